import { backoffDelay, type RetryOptions, realScheduler, retryAfterMs, type Scheduler } from "./backoff.js";
import { LIMITS } from "./limits.js";
import { PersistentQueue, type QueuedItem, toItem } from "./queue.js";
import { defaultStorage, type LayersStorage } from "./storage.js";
import type {
  Consent,
  DeliveryError,
  DeviceInfo,
  IdentifyTraits,
  LayersEvent,
  Properties,
  Rejection,
} from "./types.js";
import { currentPageUrl, onPageHidden } from "./web.js";

/** The part of a fetch response the SDK reads. */
export interface FetchResponse {
  status: number;
  headers: { get(name: string): string | null };
  text(): Promise<string>;
}
export interface FetchInit {
  method: "POST";
  headers: Record<string, string>;
  body: string;
  keepalive: boolean;
  credentials: "omit";
  signal?: unknown;
}
export type FetchLike = (url: string, init: FetchInit) => Promise<FetchResponse>;

export interface LayersOptions {
  /** The project's publishable SDK key, `lp_pk_…`. */
  key: string;
  /** The ingest's origin, e.g. `https://ingest.example.com`; events go to `{endpoint}/l/events`. */
  endpoint: string;
  /** Send once this many events are queued (default 20). */
  flushAt?: number;
  /** Send queued events at most this many ms after they were tracked (default 10,000). */
  flushInterval?: number;
  /** Events kept while the ingest cannot be reached (default 1,000); past it the oldest are dropped. */
  maxQueueSize?: number;
  /** Where the queue and identity persist. Default: IndexedDB → localStorage in browsers, memory elsewhere. */
  storage?: LayersStorage;
  /** Added to every event (≤ 128 characters). */
  appId?: string;
  /** An event that will never be stored: refused locally (too large, queue full) or by the ingest. */
  onRejected?: (event: LayersEvent, rejection: Rejection) => void;
  /** Delivery trouble (auth, rate limit, outage); the events stay queued. */
  onError?: (error: DeliveryError) => void;
  /** Web: attach the page URL (scheme, host, path) to each event. Default: on where `location` is http(s). */
  pageUrl?: boolean;
  /**
   * Web: send on pagehide / visibilitychange→hidden with `fetch(…, { keepalive: true })` and no custom
   * header (key in the URL, text/plain body), so no CORS preflight has to go first. Default: on in browsers.
   */
  flushOnPageHide?: boolean;
  /**
   * Send `anonymousId` with each event (default: on). The server stores it with the event, and identify()
   * links it to the user id, so access, export and deletion by user id cover the events sent before
   * identify. Off: anonymous events cannot be found by user id later.
   */
  sendAnonymousId?: boolean;
  retry?: RetryOptions;
  /** Abort a request after this many ms and retry it (default 15,000). */
  timeoutMs?: number;
  fetch?: FetchLike;
  scheduler?: Scheduler;
  random?: () => number;
}

export interface Layers {
  /** Queues an event; returns its eventId (kept through every retry and reload), or null if refused locally. */
  track(name: string, properties?: Properties): string | null;
  /** Sets the user for this and later events and sends an `identify` event with the contact data. */
  identify(userId: string, traits?: IdentifyTraits): string | null;
  /** Web: a `page_view` event (its pageUrl says which page; add properties such as a path yourself). */
  page(properties?: Properties): string | null;
  setConsent(consent: Consent): void;
  setDevice(device: DeviceInfo): void;
  /** iOS: attached to the next event only (Apple attributes once per user). */
  setAdServicesToken(token: string): void;
  /** Sends everything queued; resolves when the queue is empty or sending must wait (retry, 401…). */
  flush(): Promise<void>;
  /** Forgets the user: new anonymousId, no userId or contact data. Queued events keep theirs. */
  reset(): void;
  /** Stops timers and listeners after one last flush and write to storage. */
  shutdown(): Promise<void>;
  readonly anonymousId: string;
  readonly userId: string | null;
  /** Resolves once the queue and identity left by an earlier instance are loaded. */
  readonly ready: Promise<void>;
}

interface Identity {
  anonymousId: string;
  userId: string | null;
  consent?: Consent;
}

type Mark = NonNullable<QueuedItem["sending"]>;

const KEY_SHAPE = /^lp_pk_[A-Za-z0-9]{32}$/;
/** A batch body is `{"sentAt":<13 digits>,"events":[…]}`: room for it and the commas. */
const ENVELOPE_BYTES = 64;

export function createLayers(options: LayersOptions): Layers {
  if (!KEY_SHAPE.test(options.key ?? ""))
    throw new TypeError(
      "Layers: `key` must be the project's SDK key, lp_pk_ followed by 32 letters or digits",
    );
  if (!/^https?:\/\//.test(options.endpoint ?? ""))
    throw new TypeError("Layers: `endpoint` must be the ingest's http(s) origin");
  const url = `${options.endpoint.replace(/\/+$/, "")}/l/events`;
  const key = options.key;
  const beaconUrl = `${url}?key=${key}`;
  const flushAt = Math.max(1, Math.min(options.flushAt ?? 20, LIMITS.maxEventsPerRequest));
  const flushInterval = options.flushInterval ?? 10_000;
  const clock = options.scheduler ?? realScheduler;
  const random = options.random ?? Math.random;
  const timeoutMs = options.timeoutMs ?? 15_000;
  const doFetch: FetchLike =
    options.fetch ?? ((u, init) => (globalThis as unknown as { fetch: FetchLike }).fetch(u, init));
  const storage = options.storage ?? defaultStorage();
  // A partner's callback that throws must not stop delivery.
  const onRejected = (event: LayersEvent, rejection: Rejection) => {
    try {
      options.onRejected?.(event, rejection);
    } catch {}
  };
  const onError = (error: DeliveryError) => {
    try {
      options.onError?.(error);
    } catch {}
  };
  const withPageUrl = options.pageUrl ?? currentPageUrl() !== null;
  const namespace = `layers.${key.slice(-8)}`;
  const identityKey = `${namespace}.identity`;

  const queue = new PersistentQueue(
    storage,
    `${namespace}.queue`,
    options.maxQueueSize ?? 1_000,
    (events) => {
      for (const e of events)
        onRejected(e, { code: "queue_full", message: "dropped: the queue was full (oldest first)" });
    },
  );
  let identity: Identity = { anonymousId: uuid(), userId: null };
  /** The anonymous id of events tracked before the stored identity is read: replaced by the stored one. */
  const provisionalAnonymousId = identity.anonymousId;
  let traits: IdentifyTraits = {};
  let device: DeviceInfo | undefined;
  let adServicesToken: string | undefined;
  let stopped: DeliveryError | null = null;
  let retryAt = 0;
  let attempt = 0;
  let wake: { at: number; handle: unknown } | null = null;
  let draining: Promise<void> | null = null;
  let again = false;
  let closed = false;
  /**
   * Until the stored identity is read (IndexedDB and AsyncStorage answer later), what was set meanwhile and
   * which events were tracked without a user or a consent of their own: the stored values fill those in, so
   * a consent refused on an earlier visit holds for the first events of this one too.
   */
  let early: { user: boolean; consent: boolean; reset: boolean; items: QueuedItem[] } | null = {
    user: false,
    consent: false,
    reset: false,
    items: [],
  };

  const saveIdentity = () => {
    void Promise.resolve(storage.setItem(identityKey, JSON.stringify(identity))).catch(() => {});
  };

  const ready = (async () => {
    let stored: Identity | null = null;
    try {
      stored = readIdentity(await storage.getItem(identityKey));
    } catch {
      // unreadable: keep the fresh identity
    }
    const meanwhile = early!;
    early = null;
    if (stored) {
      const consent = meanwhile.consent ? identity.consent : stored.consent;
      identity = {
        anonymousId: meanwhile.reset ? identity.anonymousId : stored.anonymousId,
        userId: meanwhile.user || meanwhile.reset ? identity.userId : stored.userId,
        ...(consent && { consent }),
      };
      for (const item of meanwhile.items) {
        const e = item.event;
        const fillUser =
          !meanwhile.user && !meanwhile.reset && e.userId === undefined && stored.userId !== null;
        if (fillUser) e.userId = stored.userId;
        if (!meanwhile.reset && e.anonymousId === provisionalAnonymousId) e.anonymousId = stored.anonymousId;
        if (!meanwhile.consent && e.consent === undefined && stored.consent) e.consent = stored.consent;
        Object.assign(item, toItem(e));
      }
    }
    saveIdentity();
    await queue.load();
    if (queue.items.length > 0) schedule(0);
  })();

  function schedule(ms: number) {
    if (closed) return;
    const at = clock.now() + ms;
    if (wake && wake.at <= at) return;
    if (wake) clock.clearTimeout(wake.handle);
    wake = {
      at,
      handle: clock.setTimeout(() => {
        wake = null;
        void drain();
      }, ms),
    };
  }

  function enqueue(name: string, properties: Properties | undefined, extra: Partial<LayersEvent>) {
    const event: LayersEvent = { eventId: uuid(), name, timestamp: clock.now() };
    if (identity.userId !== null) event.userId = identity.userId;
    if (options.appId) event.appId = options.appId;
    if (properties) event.properties = properties;
    if (traits.email) event.email = traits.email;
    if (traits.phone) event.phone = traits.phone;
    if (traits.phoneCountry) event.phoneCountry = traits.phoneCountry;
    if (device) event.device = device;
    if (identity.consent) event.consent = identity.consent;
    if (adServicesToken) {
      event.adServicesToken = adServicesToken;
      adServicesToken = undefined;
    }
    if (withPageUrl) {
      const page = currentPageUrl();
      if (page) event.pageUrl = page;
    }
    if (options.sendAnonymousId !== false) event.anonymousId = identity.anonymousId;
    Object.assign(event, extra);

    const trimmed = typeof name === "string" ? name.trim() : "";
    if (trimmed.length === 0 || trimmed.length > LIMITS.maxNameLength) {
      onRejected(event, { code: "invalid_event", message: `name: 1–${LIMITS.maxNameLength} characters` });
      return null;
    }
    let item: QueuedItem;
    try {
      item = toItem(event);
    } catch (error) {
      // A cycle or a BigInt in the properties: JSON cannot carry it.
      onRejected(event, { code: "invalid_event", message: `not JSON: ${String(error)}` });
      return null;
    }
    if (item.bytes > LIMITS.maxEventBytes) {
      onRejected(event, {
        code: "event_too_large",
        message: `an event may be at most ${LIMITS.maxEventBytes} bytes of JSON; this one is ${item.bytes}`,
      });
      return null;
    }
    queue.push(item);
    early?.items.push(item);
    if (queue.items.length >= flushAt) void drain();
    else schedule(flushInterval);
    return event.eventId;
  }

  /**
   * The next batch from the oldest events not in a request, within the ingest's (or keepalive's) limits.
   * For a keepalive request, events in an ordinary request count as not sent: the browser cancels that
   * request when the page unloads, and the ingest dedupes them if both arrive.
   */
  function takeBatch(maxBytes: number, mark: Mark): QueuedItem[] {
    const batch: QueuedItem[] = [];
    let bytes = ENVELOPE_BYTES;
    for (const item of queue.items) {
      if (item.sending && !(mark === "keepalive" && item.sending === "request")) continue;
      if (batch.length === LIMITS.maxEventsPerRequest || bytes + item.bytes + 1 > maxBytes) break;
      batch.push(item);
      bytes += item.bytes + 1;
    }
    for (const item of batch) item.sending = mark;
    return batch;
  }

  function report(error: Omit<DeliveryError, "stopped">, stop = false) {
    const full = { ...error, stopped: stop };
    if (stop) stopped = full;
    onError(full);
  }

  function rejectAll(batch: QueuedItem[], rejections: (Rejection | undefined)[]) {
    // An event both requests of a closing page carried is reported once: by the answer that came first.
    const queued = new Set(queue.items);
    batch.forEach((item, i) => {
      const r = rejections[i];
      if (r && queued.has(item)) onRejected(item.event, r);
    });
    queue.remove(batch);
  }

  /** One request. true: the batch is settled (stored or rejected); false: it waits in the queue. */
  async function send(batch: QueuedItem[], keepalive: boolean): Promise<boolean> {
    const mark: Mark = keepalive ? "keepalive" : "request";
    const body = `{"sentAt":${clock.now()},"events":[${batch.map((i) => i.json).join(",")}]}`;
    const unmark = () => {
      // Only this request's marks: an event a keepalive request took over stays in it.
      for (const item of batch) if (item.sending === mark) item.sending = undefined;
    };
    const Abort = (
      globalThis as unknown as { AbortController?: new () => { signal: unknown; abort(): void } }
    ).AbortController;
    const abort = Abort ? new Abort() : null;
    const timer = clock.setTimeout(() => abort?.abort(), timeoutMs);
    let res: FetchResponse;
    let text = "";
    try {
      // A page being closed sends a "simple" request: key in the URL, no header of ours, the body as
      // text/plain. One with Authorization needs a CORS preflight first: one more round trip to finish after
      // the page is gone. The key is publishable, so the URL may carry it.
      res = await doFetch(keepalive ? beaconUrl : url, {
        method: "POST",
        headers: keepalive ? {} : { Authorization: `Bearer ${key}`, "Content-Type": "application/json" },
        body,
        keepalive,
        credentials: "omit",
        signal: abort?.signal,
      });
      text = await res.text();
    } catch (error) {
      unmark();
      return retryLater({ code: "network_error", message: String(error) });
    } finally {
      clock.clearTimeout(timer);
    }
    const answer = parseJson(text) as {
      rejected?: { index: number; code: string; message: string }[];
      error?: {
        code?: string;
        message?: string;
        details?: { rejected?: { index: number; code: string; message: string }[] };
      };
    } | null;
    const status = res.status;
    const code = answer?.error?.code ?? `http_${status}`;
    const message = answer?.error?.message ?? `HTTP ${status}`;

    if (status >= 200 && status < 300) {
      attempt = 0;
      const byIndex: (Rejection | undefined)[] = [];
      for (const r of answer?.rejected ?? []) byIndex[r.index] = { code: r.code, message: r.message };
      rejectAll(batch, byIndex);
      return true;
    }
    unmark();
    if (status === 413 || code === "too_many_events") {
      if (batch.length === 1) {
        rejectAll(batch, [{ code, message }]);
        return true;
      }
      // Split in two and send each half now; what fits goes through.
      const half = Math.ceil(batch.length / 2);
      const first = batch.slice(0, half);
      const second = batch.slice(half);
      for (const item of first) item.sending = mark;
      if (!(await send(first, keepalive))) return false;
      for (const item of second) item.sending = mark;
      return send(second, keepalive);
    }
    if (status === 400) {
      // invalid_events: no event was valid, each has its reason. Any other 400 is a malformed request that
      // a retry would repeat forever: report every event and drop the batch.
      const listed = answer?.error?.details?.rejected;
      const byIndex: (Rejection | undefined)[] = batch.map(() => ({ code, message }));
      for (const r of listed ?? []) byIndex[r.index] = { code: r.code, message: r.message };
      rejectAll(batch, byIndex);
      return true;
    }
    if (status === 401 || status === 403 || status === 404 || status === 405) {
      // The key or the endpoint is wrong: retrying cannot help. Keep the events; flush() tries again.
      report({ code, message, status }, true);
      return false;
    }
    if (status === 429) {
      const wait = retryAfterMs(res.headers.get("Retry-After"), clock.now());
      if (wait !== null) {
        retryAt = clock.now() + wait;
        report({ code, message, status });
        schedule(wait);
        return false;
      }
    }
    return retryLater({ code, message, status });
  }

  function retryLater(error: Omit<DeliveryError, "stopped">): false {
    attempt++;
    const delay = backoffDelay(attempt, random, options.retry);
    retryAt = clock.now() + delay;
    report(error);
    schedule(delay);
    return false;
  }

  async function drainOnce(): Promise<void> {
    await ready;
    for (;;) {
      if (stopped) return;
      const wait = retryAt - clock.now();
      if (wait > 0) return schedule(wait);
      const batch = takeBatch(LIMITS.maxBodyBytes, "request");
      if (batch.length === 0) return;
      if (!(await send(batch, false))) return;
    }
  }

  function drain(): Promise<void> {
    again = true;
    draining ??= (async () => {
      try {
        while (again) {
          again = false;
          await drainOnce();
        }
      } finally {
        draining = null;
      }
    })();
    return draining;
  }

  /**
   * The page is going away: one keepalive request within the browser's 64 KiB, then write storage. fetch,
   * not sendBeacon: sendBeacon always sends the ingest's cookies (credentials "include") and gives no answer,
   * so a page only hidden (a tab switch) could not mark its events delivered.
   */
  function sendBeforeUnload() {
    if (!stopped && retryAt <= clock.now()) {
      const batch = takeBatch(LIMITS.maxKeepaliveBytes - 1024, "keepalive");
      if (batch.length > 0) void send(batch, true);
    }
    void queue.persist();
  }
  const stopListening = (options.flushOnPageHide ?? true) ? onPageHidden(sendBeforeUnload) : () => {};

  return {
    track: (name, properties) => enqueue(name, properties, {}),
    identify(userId, newTraits = {}) {
      if (typeof userId !== "string" || userId.length === 0 || userId.length > LIMITS.maxUserIdLength) {
        const message = `userId: 1–${LIMITS.maxUserIdLength} characters`;
        onRejected(
          { eventId: "", name: "identify", timestamp: clock.now() },
          { code: "invalid_event", message },
        );
        return null;
      }
      if (early) early.user = true;
      identity = { ...identity, userId };
      traits = { ...newTraits };
      saveIdentity();
      return enqueue("identify", undefined, {});
    },
    // Only the partner's properties: they are stored, and paths can hold ids and tokens. The page URL rides
    // on every event as pageUrl, which is relayed without its query and never stored.
    page: (properties) => enqueue("page_view", properties, {}),
    setConsent(consent) {
      if (early) early.consent = true;
      identity = { ...identity, consent: { ...consent } };
      saveIdentity();
    },
    setDevice(next) {
      device = { ...device, ...next };
    },
    setAdServicesToken(token) {
      adServicesToken = token;
    },
    flush() {
      stopped = null;
      return drain();
    },
    reset() {
      if (early) early.reset = true;
      identity = {
        anonymousId: uuid(),
        userId: null,
        ...(identity.consent && { consent: identity.consent }),
      };
      traits = {};
      saveIdentity();
    },
    async shutdown() {
      stopListening();
      await drain();
      closed = true;
      if (wake) clock.clearTimeout(wake.handle);
      wake = null;
      await queue.persist();
    },
    get anonymousId() {
      return identity.anonymousId;
    },
    get userId() {
      return identity.userId;
    },
    ready,
  };
}

/** The stored identity, or null when absent or not of the shape this SDK writes. */
function readIdentity(text: string | null): Identity | null {
  const raw = parseJson(text ?? "null") as Partial<Identity> | null;
  if (!raw || typeof raw !== "object" || typeof raw.anonymousId !== "string") return null;
  const ads = raw.consent?.ads;
  return {
    anonymousId: raw.anonymousId,
    userId: typeof raw.userId === "string" && raw.userId !== "" ? raw.userId : null,
    ...(typeof ads === "boolean" && { consent: { ads } }),
  };
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

/** A random UUID v4: the event ids the ingest dedupes on, and the anonymous id. */
export function uuid(): string {
  const c = (
    globalThis as unknown as {
      crypto?: { randomUUID?: () => string; getRandomValues?: (a: Uint8Array) => Uint8Array };
    }
  ).crypto;
  if (c?.randomUUID) return c.randomUUID();
  const b = new Uint8Array(16);
  if (c?.getRandomValues) c.getRandomValues(b);
  else for (let i = 0; i < 16; i++) b[i] = Math.floor(Math.random() * 256);
  b[6] = (b[6]! & 0x0f) | 0x40;
  b[8] = (b[8]! & 0x3f) | 0x80;
  const h = Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}
