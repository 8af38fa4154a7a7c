import { ApiError } from "../../shared/errors";
import { INGEST_LIMITS } from "../../shared/limits";
import { pageUrlForRelay } from "../../shared/pageUrl";
import { ingestEnvelopeSchema } from "../../shared/schemas/sdk-event";
import {
  type IngestContext,
  jsonLargerThan,
  type NormalizedBatch,
  normalizeEvents,
  type Rejection,
} from "./normalizeEvents";

// Segment's HTTP Tracking API (POST /v1/batch, /v1/track, …) as a second way into the same ingest: each
// Segment message is rewritten into the event input /l/events takes, then judged, hashed and queued by the
// same normalizeEvents and enqueueEvents. Only the fields named here are read; everything else in a message
// (context.ip above all, other traits, integrations, _metadata, the body's writeKey) is never looked at.

export const SEGMENT_TYPES = ["track", "identify", "page", "screen", "group", "alias"] as const;
export type SegmentType = (typeof SEGMENT_TYPES)[number];
/** The paths of a batch under /v1: Segment's documented one, and the ones its own libraries post to. */
export const SEGMENT_BATCH_PATHS = ["batch", "b", "import"] as const;

/** Segment's documented sizes: 32 KB for one message (and a single-message request), 500 KB for a batch. */
export const SEGMENT_LIMITS = {
  maxMessageBytes: INGEST_LIMITS.maxEventBytes,
  maxBatchBytes: INGEST_LIMITS.maxBodyBytes,
  maxMessagesPerBatch: INGEST_LIMITS.maxEventsPerRequest,
} as const;

/** The event names our own SDK uses for the same calls (sdk/src/client.ts), so both kinds of data line up. */
const EVENT_NAMES: Record<Exclude<SegmentType, "track">, string> = {
  identify: "identify",
  page: "page_view",
  screen: "screen_view",
  group: "group",
  alias: "alias",
};

export interface SegmentRequest {
  /** The sender's clock when sending: the batch's, or the single message's. */
  sentAt: string | number | undefined;
  messages: unknown[];
  /** The batch's `context`, merged under each message's own (Segment's rule for /v1/batch). */
  context: Record<string, unknown> | undefined;
  /** The route's type for /v1/track etc.; a batch names each message's type in the message. */
  routeType: SegmentType | undefined;
}

type Json = Record<string, unknown>;

function object(value: unknown): Json | undefined {
  return value !== null && typeof value === "object" && !Array.isArray(value) ? (value as Json) : undefined;
}
function text(value: unknown): string | undefined {
  return typeof value === "string" && value.length > 0 ? value : undefined;
}

/**
 * The request body as Segment's API reads it: `{ batch: [...], context?, sentAt? }` for /v1/batch, one
 * message for the others. Request-level problems answer 400 as Segment documents (invalid JSON, a message
 * over 32 KB — nothing of the batch is kept); problems inside one message are judged per message later.
 */
export function parseSegmentBody(
  body: string,
  bytes: number,
  routeType: SegmentType | "batch",
): SegmentRequest {
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch {
    throw new ApiError("invalid_json", "The request body is not valid JSON.");
  }
  const root = object(json);
  if (!root) throw new ApiError("invalid_body", "The body must be a JSON object.");
  // The same rule as /l/events' envelope: a sentAt that cannot correct clocks fails the request.
  const sentAt = ingestEnvelopeSchema.shape.sentAt.safeParse(root.sentAt);
  if (!sentAt.success) {
    throw new ApiError(
      "invalid_body",
      "`sentAt` must be an ISO 8601 time with offset or epoch milliseconds.",
    );
  }
  if (routeType !== "batch") {
    return { sentAt: sentAt.data, messages: [root], context: undefined, routeType };
  }
  if (!Array.isArray(root.batch)) {
    throw new ApiError("invalid_body", 'A batch is { "batch": [ ... ] }: `batch` must be an array.');
  }
  const messages = root.batch as unknown[];
  if (messages.length === 0) throw new ApiError("invalid_body", "The batch holds no messages.");
  if (messages.length > SEGMENT_LIMITS.maxMessagesPerBatch) {
    throw new ApiError(
      "too_many_events",
      `A batch may carry at most ${SEGMENT_LIMITS.maxMessagesPerBatch} messages; this one has ${messages.length}.`,
    );
  }
  // Only a body over 32 KB can hold a message over 32 KB: small batches skip the measuring.
  if (bytes > SEGMENT_LIMITS.maxMessageBytes) {
    const index = messages.findIndex((m) => jsonLargerThan(m, SEGMENT_LIMITS.maxMessageBytes));
    if (index >= 0) {
      throw new ApiError(
        "message_too_large",
        `A message may be at most ${SEGMENT_LIMITS.maxMessageBytes} bytes of JSON; batch[${index}] is larger. Nothing in this batch was accepted.`,
        { details: { index } },
      );
    }
  }
  return { sentAt: sentAt.data, messages, context: object(root.context), routeType: undefined };
}

/**
 * The parts of a `context` that segmentToEvent reads (besides `userAgent`). Merging copies only these: a
 * batch's context is merged under each of up to 500 messages, and copying all of it (tens of thousands
 * of keys fit in 500 KB) made one request cost minutes of CPU. What is never read is never looked at.
 */
const CONTEXT_FIELDS: Record<string, readonly string[]> = {
  traits: ["email", "phone"],
  device: ["advertisingId", "adTrackingEnabled", "type", "model"],
  os: ["name", "version"],
  app: ["namespace"],
  consent: ["categoryPreferences"],
  page: ["url"],
};

function own(value: Json | undefined, key: string): unknown {
  return value !== undefined && Object.hasOwn(value, key) ? value[key] : undefined;
}

/**
 * Batch context under the message's, objects one level down (device, traits, page…) merged too, as
 * Segment documents, for the fields read. Only fixed names are assigned: a "__proto__" key in the body is
 * never copied, so it can never become a prototype.
 */
function mergeContext(outer: Json | undefined, inner: Json | undefined): Json {
  const innerHas = (key: string) => inner !== undefined && Object.hasOwn(inner, key);
  const merged: Json = { userAgent: innerHas("userAgent") ? inner?.userAgent : own(outer, "userAgent") };
  for (const [key, fields] of Object.entries(CONTEXT_FIELDS)) {
    const a = object(own(outer, key));
    const b = object(own(inner, key));
    // The message's own value wins whole when either side is not an object.
    if (innerHas(key) && !b) continue;
    if (!a && !b) continue;
    const picked: Json = {};
    for (const field of fields) {
      if (b && Object.hasOwn(b, field)) picked[field] = b[field];
      else if (a && Object.hasOwn(a, field)) picked[field] = a[field];
    }
    merged[key] = picked;
  }
  return merged;
}

// A batch's categoryPreferences is one object shared by all its messages: read once, not once per message.
const adsConsentOf = new WeakMap<Json, boolean | undefined>();

/** Ads consent from Segment's Consent Management (`context.consent.categoryPreferences`): its Advertising category. */
function adsConsent(context: Json): boolean | undefined {
  const preferences = object(object(context.consent)?.categoryPreferences);
  if (!preferences) return undefined;
  if (adsConsentOf.has(preferences)) return adsConsentOf.get(preferences);
  let granted: boolean | undefined;
  for (const [category, value] of Object.entries(preferences)) {
    if (category.toLowerCase() === "advertising" && typeof value === "boolean") {
      granted = value;
      break;
    }
  }
  adsConsentOf.set(preferences, granted);
  return granted;
}

/** Page properties that Analytics.js fills from the address bar: URLs lose query and fragment, `search` goes. */
function pageProperties(properties: Json): Json {
  const out: Json = { ...properties };
  delete out.search;
  for (const key of ["url", "referrer"] as const) {
    if (!(key in out)) continue;
    const url = typeof out[key] === "string" ? pageUrlForRelay(out[key] as string) : null;
    if (url === null) delete out[key];
    else out[key] = url;
  }
  return out;
}

interface Converted {
  event: Json;
  userAgent: string | null;
}

/** One Segment message as the event input of /l/events, or why it cannot be one (Segment's own rules). */
export function segmentToEvent(
  raw: unknown,
  routeType: SegmentType | undefined,
  batchContext: Json | undefined,
): Converted | { problem: string } {
  const message = object(raw);
  if (!message) return { problem: "message: must be an object" };
  const type = routeType ?? message.type;
  if (typeof type !== "string" || !(SEGMENT_TYPES as readonly string[]).includes(type)) {
    return { problem: `type: must be one of ${SEGMENT_TYPES.join(", ")}` };
  }
  const segmentType = type as SegmentType;
  const context = mergeContext(batchContext, object(message.context));
  const userId = message.userId;
  const anonymousId = message.anonymousId;
  if (segmentType === "alias" && (userId == null || message.previousId == null)) {
    return { problem: "alias: userId and previousId are required" };
  }
  if (userId == null && anonymousId == null) {
    return { problem: "userId or anonymousId is required (Segment's no_user_anon_id)" };
  }

  const event: Json = {
    name: segmentType === "track" ? message.event : EVENT_NAMES[segmentType],
  };
  if (message.messageId !== undefined) event.eventId = message.messageId;
  if (userId != null) event.userId = userId;
  // Stored with the event; with userId it links the two (identity links, README Data-subject requests).
  if (anonymousId != null) event.anonymousId = anonymousId;
  if (message.timestamp !== undefined) event.timestamp = message.timestamp;

  // Contact data: identify's traits win over context.traits. Hashed by normalizeEvents; other traits
  // (names, addresses…) are never read.
  const traits = segmentType === "identify" ? object(message.traits) : undefined;
  const contextTraits = object(context.traits);
  const email = traits?.email ?? contextTraits?.email;
  const phone = traits?.phone ?? contextTraits?.phone;
  if (email != null) event.email = email;
  if (phone != null) event.phone = phone;

  let properties: unknown;
  if (segmentType === "track" || segmentType === "page" || segmentType === "screen") {
    properties = message.properties;
    const props = object(properties);
    if (segmentType !== "track" && (props || properties === undefined)) {
      const name = text(message.name);
      const base = segmentType === "page" ? pageProperties(props ?? {}) : { ...props };
      properties = name ? { ...base, name } : base;
    }
  } else if (segmentType === "group") {
    properties = message.groupId == null ? undefined : { groupId: message.groupId };
  } else if (segmentType === "alias") {
    // No link table yet: the alias is recorded as an event of the new user id, naming the old one.
    properties = { previousId: message.previousId };
  }
  if (properties !== undefined) event.properties = properties;

  const app = object(context.app);
  if (text(app?.namespace)) event.appId = app?.namespace;

  const device = object(context.device);
  const os = object(context.os);
  const eventDevice: Json = {};
  if (text(os?.name)) eventDevice.os = os?.name;
  if (text(os?.version)) eventDevice.osVersion = os?.version;
  if (text(device?.model)) eventDevice.model = device?.model;
  // The ad id's platform is the device type Segment's mobile libraries set; "limit ad tracking" drops it.
  const adId = text(device?.advertisingId);
  if (adId && device?.adTrackingEnabled !== false) {
    const deviceType = typeof device?.type === "string" ? device.type.toLowerCase() : "";
    if (deviceType === "ios") eventDevice.idfa = adId;
    else if (deviceType === "android") eventDevice.gaid = adId;
  }
  if (Object.keys(eventDevice).length > 0) event.device = eventDevice;

  const ads = adsConsent(context);
  if (ads !== undefined) event.consent = { ads };

  const pageUrl = text(object(context.page)?.url);
  if (pageUrl) event.pageUrl = pageUrl;

  return { event, userAgent: text(context.userAgent) ?? null };
}

/**
 * Converts every message, judges and normalizes the converted ones with normalizeEvents (each with its own
 * context.userAgent), and reports rejections by the message's index in the request.
 */
export async function normalizeSegmentMessages(
  request: SegmentRequest,
  ctx: Omit<IngestContext, "userAgent" | "relayUserAgent" | "eventUserAgents">,
): Promise<NormalizedBatch> {
  const rejected: Rejection[] = [];
  const events: Json[] = [];
  const userAgents: (string | null)[] = [];
  const origin: number[] = [];
  for (const [index, message] of request.messages.entries()) {
    const converted = segmentToEvent(message, request.routeType, request.context);
    if ("problem" in converted) {
      rejected.push({ index, code: "invalid_event", message: converted.problem });
      continue;
    }
    events.push(converted.event);
    userAgents.push(converted.userAgent);
    origin.push(index);
  }
  const normalized = await normalizeEvents(events, request.sentAt, {
    ...ctx,
    userAgent: { os: null, osVersion: null, browser: null, deviceModel: null },
    relayUserAgent: null,
    eventUserAgents: userAgents,
  });
  for (const r of normalized.rejected) rejected.push({ ...r, index: origin[r.index] ?? r.index });
  rejected.sort((a, b) => a.index - b.index);
  return { accepted: normalized.accepted, rejected };
}
