import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

// Local stand-ins for Meta's Conversions API, TikTok's Events API 2.0 and Apple's AdServices API. Each
// validates requests against the documented shapes (and answers malformed ones the way the platform does),
// records what it received, dedupes by event_id as Meta and TikTok do (48 h), and can be told to fail:
// 500, 429 with Retry-After, or to hang (optionally after accepting, the ambiguous timeout case).

const SHA256 = /^[0-9a-f]{64}$/;

export type Fault =
  | { kind: "status"; status: number; retryAfter?: string; message?: string }
  | { kind: "hang"; afterAccept: boolean };

export interface RecordedRequest {
  path: string;
  headers: Record<string, string | string[] | undefined>;
  body: string;
  status: number;
}

export interface FakePlatform {
  requests: RecordedRequest[];
  /** event_id → how many requests that were answered (or accepted before a hang) carried it. */
  received: Map<string, number>;
  /** The accepted events by event_id (first arrival: the platform keeps one per event_id). */
  accepted: Map<string, Record<string, unknown>>;
  /** The next `count` requests fail with `fault`. */
  failNext(count: number, fault: Fault): void;
  /** Every request fails with `fault` until cleared (null). */
  failAlways(fault: Fault | null): void;
  reset(): void;
}

function platformState(): FakePlatform & { takeFault(): Fault | null } {
  let faults: Fault[] = [];
  let always: Fault | null = null;
  const state = {
    requests: [] as RecordedRequest[],
    received: new Map<string, number>(),
    accepted: new Map<string, Record<string, unknown>>(),
    failNext(count: number, fault: Fault) {
      faults.push(...Array.from({ length: count }, () => fault));
    },
    failAlways(fault: Fault | null) {
      always = fault;
    },
    reset() {
      faults = [];
      always = null;
      state.requests.length = 0;
      state.received.clear();
      state.accepted.clear();
    },
    takeFault(): Fault | null {
      return always ?? faults.shift() ?? null;
    },
  };
  return state;
}

function accept(p: FakePlatform, events: Record<string, unknown>[]) {
  for (const e of events) {
    const id = String(e.event_id);
    p.received.set(id, (p.received.get(id) ?? 0) + 1);
    if (!p.accepted.has(id)) p.accepted.set(id, e);
  }
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);

function isHttpUrl(v: string): boolean {
  try {
    const url = new URL(v);
    return url.protocol === "http:" || url.protocol === "https:";
  } catch {
    return false;
  }
}

/** A hashed field: one SHA-256 hex string or a list of them (Meta accepts both). */
function hashedList(v: unknown): boolean {
  if (typeof v === "string") return SHA256.test(v);
  return Array.isArray(v) && v.length > 0 && v.every((x) => typeof x === "string" && SHA256.test(x));
}

const META_ACTION_SOURCES = new Set([
  "website",
  "app",
  "email",
  "phone_call",
  "chat",
  "physical_store",
  "system_generated",
  "business_messaging",
  "other",
]);

/** Meta rejects the whole request when one event is invalid: returns the first problem, or null. */
export function metaEventProblem(e: unknown, nowSeconds: number): string | null {
  if (!isObject(e)) return "event is not an object";
  if (typeof e.event_name !== "string" || e.event_name === "") return "event_name is required";
  if (!Number.isInteger(e.event_time)) return "event_time must be a Unix timestamp in seconds";
  const t = e.event_time as number;
  if (t > 1e11) return "event_time must be in seconds, not milliseconds";
  if (t < nowSeconds - 7 * 86400) return "event_time is more than 7 days in the past";
  if (t > nowSeconds + 60) return "event_time is in the future";
  if (typeof e.event_id !== "string" || e.event_id === "") return "event_id is required for deduplication";
  if (typeof e.action_source !== "string" || !META_ACTION_SOURCES.has(e.action_source))
    return "action_source is invalid";
  const u = e.user_data;
  if (!isObject(u)) return "user_data is required";
  for (const key of ["em", "ph", "external_id", "country", "ct", "st", "zp", "fn", "ln", "ge", "db"]) {
    if (u[key] !== undefined && !hashedList(u[key])) return `user_data.${key} must be SHA-256 hashed`;
  }
  if (u.madid !== undefined && (typeof u.madid !== "string" || SHA256.test(u.madid)))
    return "user_data.madid must be the raw advertiser id, not hashed";
  if (u.em === undefined && u.ph === undefined && u.external_id === undefined && u.madid === undefined)
    return "user_data needs at least one customer information parameter";
  if (
    u.client_user_agent !== undefined &&
    (typeof u.client_user_agent !== "string" || u.client_user_agent === "")
  )
    return "user_data.client_user_agent must be the User-Agent string";
  if (typeof u.client_user_agent === "string" && SHA256.test(u.client_user_agent))
    return "user_data.client_user_agent must not be hashed";
  // Website events require client_user_agent and event_source_url; non-web events only action_source
  // (developers.facebook.com, Conversions API parameters). App events also need app_data.
  if (e.action_source === "website") {
    if (u.client_user_agent === undefined)
      return "user_data.client_user_agent is required for website events";
    if (typeof e.event_source_url !== "string" || !isHttpUrl(e.event_source_url))
      return "event_source_url is required for website events (the browser URL where the event happened)";
  }
  if (e.action_source === "app") {
    const a = e.app_data;
    if (!isObject(a)) return "app_data is required for app events";
    if (
      !Array.isArray(a.extinfo) ||
      a.extinfo.length !== 16 ||
      !a.extinfo.every((x) => typeof x === "string")
    )
      return "app_data.extinfo must be an array of 16 strings";
    if (a.extinfo[0] !== "i2" && a.extinfo[0] !== "a2") return "app_data.extinfo[0] must be i2 or a2";
    if (a.advertiser_tracking_enabled !== 0 && a.advertiser_tracking_enabled !== 1)
      return "app_data.advertiser_tracking_enabled must be 0 or 1";
  }
  if (e.custom_data !== undefined) {
    const c = e.custom_data;
    if (!isObject(c)) return "custom_data must be an object";
    if (c.value !== undefined && typeof c.value !== "number") return "custom_data.value must be a number";
    if (c.currency !== undefined && !(typeof c.currency === "string" && /^[A-Za-z]{3}$/.test(c.currency)))
      return "custom_data.currency must be an ISO 4217 code";
    if (c.content_ids !== undefined && !Array.isArray(c.content_ids))
      return "custom_data.content_ids must be a list";
  }
  return null;
}

/** TikTok's standard events (Events API 2.0). */
export const TIKTOK_STANDARD = new Set([
  "AddPaymentInfo",
  "AddToCart",
  "AddToWishlist",
  "ClickButton",
  "CompletePayment",
  "CompleteRegistration",
  "Contact",
  "Download",
  "InitiateCheckout",
  "PlaceAnOrder",
  "Search",
  "SubmitForm",
  "Subscribe",
  "ViewContent",
]);

export function tiktokEventProblem(e: unknown): string | null {
  if (!isObject(e)) return "data item is not an object";
  if (typeof e.event !== "string" || !TIKTOK_STANDARD.has(e.event))
    return `event ${String(e.event)} is not a standard event`;
  if (!Number.isInteger(e.event_time) || (e.event_time as number) > 1e11) return "event_time must be seconds";
  if (typeof e.event_id !== "string" || e.event_id === "") return "event_id is required";
  const u = e.user;
  if (!isObject(u)) return "user is required";
  for (const key of ["email", "phone", "external_id"]) {
    if (u[key] !== undefined && !(typeof u[key] === "string" && SHA256.test(u[key] as string)))
      return `user.${key} must be SHA-256 hashed`;
  }
  if (e.properties !== undefined) {
    const p = e.properties;
    if (!isObject(p)) return "properties must be an object";
    if (p.value !== undefined && typeof p.value !== "number") return "properties.value must be a number";
    if (p.currency !== undefined && !(typeof p.currency === "string" && /^[A-Z]{3}$/.test(p.currency)))
      return "properties.currency must be an ISO 4217 code";
    if (p.contents !== undefined && !(Array.isArray(p.contents) && p.contents.every(isObject)))
      return "properties.contents must be a list of objects";
  }
  return null;
}

export interface AppleToken {
  /** How many times to answer 404 (record not ready) before answering the record. */
  notFoundTimes?: number;
  record: Record<string, unknown>;
}

export interface FakePlatforms {
  meta: FakePlatform & { tokens: Map<string, string> };
  tiktok: FakePlatform & { tokens: Map<string, string> };
  apple: FakePlatform & { tokens: Map<string, AppleToken> };
  /** Relay vars pointing the relay Worker at these fakes. */
  vars: { META_API_BASE: string; TIKTOK_API_BASE: string; APPLE_ADSERVICES_URL: string };
  close(): Promise<void>;
}

async function readAll(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) {
  res.writeHead(status, { "Content-Type": "application/json", ...headers });
  res.end(JSON.stringify(body));
}

export async function startFakePlatforms(options: { hangMs?: number } = {}): Promise<FakePlatforms> {
  const hangMs = options.hangMs ?? 5_000;
  const meta = Object.assign(platformState(), { tokens: new Map<string, string>() });
  const tiktok = Object.assign(platformState(), { tokens: new Map<string, string>() });
  const apple = Object.assign(platformState(), { tokens: new Map<string, AppleToken>() });
  const appleSeen = new Map<string, number>();
  const hanging = new Set<ServerResponse>();

  /** Applies an injected fault; true when the request was answered (or left hanging) by it. */
  const applyFault = (
    p: ReturnType<typeof platformState>,
    res: ServerResponse,
    record: RecordedRequest,
    onAccept: () => void,
  ): boolean => {
    const fault = p.takeFault();
    if (!fault) return false;
    if (fault.kind === "status") {
      record.status = fault.status;
      send(
        res,
        fault.status,
        { error: { message: fault.message ?? "injected failure", code: 2 } },
        fault.retryAfter ? { "Retry-After": fault.retryAfter } : {},
      );
      return true;
    }
    if (fault.afterAccept) onAccept();
    record.status = 0;
    hanging.add(res);
    setTimeout(() => {
      hanging.delete(res);
      res.destroy();
    }, hangMs);
    return true;
  };

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? "/", "http://fake");
    const body = await readAll(req);
    const record: RecordedRequest = {
      path: url.pathname + url.search,
      headers: req.headers,
      body,
      status: 0,
    };

    // Meta: POST /vXX.X/{dataset_id}/events
    const metaPath = /^\/meta\/v\d+\.\d+\/([^/]+)\/events$/.exec(url.pathname);
    if (metaPath) {
      meta.requests.push(record);
      const reply = (status: number, payload: unknown) => {
        record.status = status;
        send(res, status, payload);
      };
      const metaError = (message: string, code = 100) =>
        reply(400, { error: { message, type: "OAuthException", code, fbtrace_id: "Afake" } });
      if (req.method !== "POST") return metaError("Unsupported method");
      let parsed: unknown;
      try {
        parsed = JSON.parse(body);
      } catch {
        return metaError("Invalid JSON");
      }
      if (!isObject(parsed)) return metaError("Invalid body");
      const datasetId = decodeURIComponent(metaPath[1] ?? "");
      const token = parsed.access_token ?? url.searchParams.get("access_token");
      if (typeof token !== "string" || meta.tokens.get(datasetId) !== token)
        return metaError("Invalid OAuth access token - Cannot parse access token", 190);
      const data = parsed.data;
      if (!Array.isArray(data) || data.length === 0 || data.length > 1000)
        return metaError("data must hold 1 to 1000 events");
      const nowSeconds = Math.floor(Date.now() / 1000);
      for (const e of data) {
        const problem = metaEventProblem(e, nowSeconds);
        if (problem) return metaError(`Invalid parameter: ${problem}`);
      }
      const events = data as Record<string, unknown>[];
      if (applyFault(meta, res, record, () => accept(meta, events))) return;
      accept(meta, events);
      return reply(200, { events_received: data.length, messages: [], fbtrace_id: "Afake" });
    }

    // TikTok: POST /open_api/v1.3/event/track/ — errors are HTTP 200 with a non-zero code, as TikTok does.
    if (url.pathname === "/tiktok/open_api/v1.3/event/track/") {
      tiktok.requests.push(record);
      const reply = (code: number, message: string) => {
        record.status = 200;
        send(res, 200, { code, message, request_id: "fake", data: {} });
      };
      if (req.method !== "POST") return reply(40002, "Unsupported method");
      let parsed: unknown;
      try {
        parsed = JSON.parse(body);
      } catch {
        return reply(40002, "Invalid JSON");
      }
      if (!isObject(parsed)) return reply(40002, "Invalid body");
      const token = req.headers["access-token"];
      const pixel = parsed.event_source_id;
      if (typeof pixel !== "string" || typeof token !== "string" || tiktok.tokens.get(pixel) !== token)
        return reply(40001, "Access token is invalid or does not match the pixel");
      if (!["web", "app", "offline", "crm"].includes(String(parsed.event_source)))
        return reply(40002, "event_source is invalid");
      const data = parsed.data;
      if (!Array.isArray(data) || data.length === 0 || data.length > 1000)
        return reply(40002, "data must hold 1 to 1000 events");
      for (const e of data) {
        const problem = tiktokEventProblem(e);
        if (problem) return reply(40002, problem);
      }
      const events = data as Record<string, unknown>[];
      if (applyFault(tiktok, res, record, () => accept(tiktok, events))) return;
      accept(tiktok, events);
      return reply(0, "OK");
    }

    // Apple AdServices: POST /api/v1/ with the token as text/plain.
    if (url.pathname === "/apple/api/v1/") {
      apple.requests.push(record);
      const answer = (status: number, payload?: unknown) => {
        record.status = status;
        if (payload === undefined) {
          res.writeHead(status);
          res.end();
        } else send(res, status, payload);
      };
      if (req.method !== "POST" || !String(req.headers["content-type"]).startsWith("text/plain"))
        return answer(400);
      const token = body.trim();
      const entry = apple.tokens.get(token);
      if (!entry) return answer(400);
      if (applyFault(apple, res, record, () => {})) return;
      const seen = (appleSeen.get(token) ?? 0) + 1;
      appleSeen.set(token, seen);
      if (seen <= (entry.notFoundTimes ?? 0)) return answer(404);
      apple.received.set(token, (apple.received.get(token) ?? 0) + 1);
      return answer(200, entry.record);
    }

    record.status = 404;
    send(res, 404, { error: "no such fake route" });
  };

  const server: Server = createServer((req, res) => {
    handle(req, res).catch(() => {
      res.writeHead(500);
      res.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  const base = `http://127.0.0.1:${port}`;
  return {
    meta,
    tiktok,
    apple,
    vars: {
      META_API_BASE: `${base}/meta/v25.0`,
      TIKTOK_API_BASE: `${base}/tiktok/open_api/v1.3`,
      APPLE_ADSERVICES_URL: `${base}/apple/api/v1/`,
    },
    async close() {
      for (const res of hanging) res.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
