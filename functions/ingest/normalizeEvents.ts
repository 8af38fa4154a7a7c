import type { EventRejectionCode } from "../../shared/errors";
import { INGEST_LIMITS } from "../../shared/limits";
import { hashEmail, type PhoneHashes, phoneHashes } from "../../shared/pii";
import type { QueuedEvent } from "../../shared/schemas/queue";
import { checkPropertyBounds, type SdkEvent, sdkEventSchema } from "../../shared/schemas/sdk-event";
import { unstorableText } from "../../shared/storableText";
import { boundedUserAgent, type ParsedUserAgent, parseUserAgent } from "./parseUserAgent";

export interface IngestContext {
  receivedAt: Date;
  retentionDays: number;
  country: string | null;
  region: string | null;
  userAgent: ParsedUserAgent;
  /**
   * The request's User-Agent, bounded (boundedUserAgent). It rides the queue message for Meta's
   * client_user_agent (required for website events) and is never stored: left out with ads consent refused.
   */
  relayUserAgent?: string | null;
  /**
   * Segment messages carry their own `context.userAgent`: when set, event i's User-Agent is entry i (parsed
   * and relayed exactly as the request's would be), in place of `userAgent` and `relayUserAgent`.
   */
  eventUserAgents?: readonly (string | null)[];
  /** Size of the whole request body: when it is under the per-event limit, no event can be over it. */
  bodyBytes: number;
  /**
   * Whether the body holds a \u0000 or \ud800–\udfff escape (shared/storableText.ts): only then are the
   * event's strings searched for a value Postgres refuses, which would fail its whole queue message.
   */
  bodyMayHoldUnstorableText: boolean;
}

export interface Rejection {
  index: number;
  code: EventRejectionCode;
  message: string;
}

export interface NormalizedBatch {
  accepted: QueuedEvent[];
  rejected: Rejection[];
}

const DAY_MS = 86_400_000;
const ZERO_AD_ID = "00000000-0000-0000-0000-000000000000"; // "limit ad tracking": not an id at all

function toMs(value: string | number): number {
  return typeof value === "number" ? value : Date.parse(value);
}

/**
 * Validates each raw event on its own, then normalizes the valid ones: hashes email and phone, applies
 * geo and the parsed User-Agent, and corrects client clock skew. Invalid events are reported by index and
 * never reach the queue; the valid ones go on.
 */
export async function normalizeEvents(
  rawEvents: unknown[],
  sentAt: string | number | undefined,
  ctx: IngestContext,
): Promise<NormalizedBatch> {
  const receivedMs = ctx.receivedAt.getTime();
  const oldestMs = receivedMs - ctx.retentionDays * DAY_MS;
  const sentAtMs = sentAt === undefined ? undefined : toMs(sentAt);
  const rejected: Rejection[] = [];
  const pending: Promise<QueuedEvent>[] = [];
  // A batch from one device repeats the same email and phone: hash each distinct value once.
  const emailHashes = new Map<string, Promise<string | null>>();
  const emailOnce = (raw: string | null | undefined) => {
    if (raw == null) return Promise.resolve(null);
    let hash = emailHashes.get(raw);
    if (!hash) {
      hash = hashEmail(raw);
      emailHashes.set(raw, hash);
    }
    return hash;
  };
  // A phone's hashes depend on the region a national number is placed in: the event's own phoneCountry,
  // else the request's geo country.
  const phones = new Map<string, Promise<PhoneHashes | null>>();
  const phoneOnce = (raw: string | null | undefined, region: string | null) => {
    if (raw == null) return Promise.resolve(null);
    const key = `${region ?? ""}:${raw}`;
    let hash = phones.get(key);
    if (!hash) {
      hash = phoneHashes(raw, region);
      phones.set(key, hash);
    }
    return hash;
  };

  // Per-event User-Agents (Segment's context.userAgent): each distinct string parsed once.
  const userAgents = new Map<string, ParsedUserAgent>();
  const agentOf = (index: number): { parsed: ParsedUserAgent; relay: string | null | undefined } => {
    if (!ctx.eventUserAgents) return { parsed: ctx.userAgent, relay: ctx.relayUserAgent };
    const raw = ctx.eventUserAgents[index] ?? null;
    const relay = boundedUserAgent(raw);
    let parsed = userAgents.get(relay ?? "");
    if (!parsed) {
      parsed = parseUserAgent(relay);
      userAgents.set(relay ?? "", parsed);
    }
    return { parsed, relay };
  };

  for (const [index, raw] of rawEvents.entries()) {
    const problem = judge(raw, index);
    if ("code" in problem) rejected.push({ index, ...problem });
    else pending.push(toQueued(problem.event, problem.ts, ctx, agentOf(index), emailOnce, phoneOnce));
  }

  return { accepted: await Promise.all(pending), rejected };

  // Either the reason an event is refused, or the event and its corrected time.
  function judge(
    raw: unknown,
    index: number,
  ): { code: EventRejectionCode; message: string } | { event: SdkEvent; ts: Date } {
    if (ctx.bodyBytes > INGEST_LIMITS.maxEventBytes && jsonLargerThan(raw, INGEST_LIMITS.maxEventBytes)) {
      return {
        code: "event_too_large",
        message: `An event may be at most ${INGEST_LIMITS.maxEventBytes} bytes of JSON.`,
      };
    }
    const unstorable = ctx.bodyMayHoldUnstorableText ? unstorableText(raw) : null;
    if (unstorable) return { code: "invalid_event", message: `Strings may not contain ${unstorable}.` };
    // An event's own User-Agent (Segment's context.userAgent) is JSON too, and its parsed device model is
    // stored: the same rule for the part that is read, or "Pixel\u0000X" would fail in the consumer after
    // a 200. (A request's User-Agent header cannot hold either.)
    const ownAgent = ctx.bodyMayHoldUnstorableText ? ctx.eventUserAgents?.[index] : null;
    const agent = ownAgent ? unstorableText(boundedUserAgent(ownAgent)) : null;
    if (agent) return { code: "invalid_event", message: `The User-Agent may not contain ${agent}.` };
    const parsed = sdkEventSchema.safeParse(raw);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      return {
        code: "invalid_event",
        message: `${issue?.path.join(".") || "event"}: ${issue?.message ?? "invalid"}`,
      };
    }
    const event = parsed.data;
    const bounds = event.properties ? checkPropertyBounds(event.properties) : null;
    if (bounds) return { code: "invalid_event", message: bounds };

    let tsMs = event.timestamp === undefined ? receivedMs : toMs(event.timestamp);
    if (sentAtMs !== undefined && event.timestamp !== undefined) tsMs = receivedMs - (sentAtMs - tsMs);
    if (tsMs > receivedMs) tsMs = receivedMs; // a clock ahead of ours cannot place an event in the future
    if (tsMs < oldestMs) {
      return {
        code: "timestamp_too_old",
        message: `The event is older than this project's retention of ${ctx.retentionDays} days.`,
      };
    }
    return { event, ts: new Date(tsMs) };
  }
}

/** Whether `value` as JSON is over `maxBytes` of UTF-8: the per-event limit of both ingest routes. */
export function jsonLargerThan(value: unknown, maxBytes: number): boolean {
  const json = JSON.stringify(value) ?? "";
  // UTF-16 length is a lower bound on UTF-8 bytes and a third of the upper bound: encode only when it matters.
  return json.length * 3 > maxBytes && new TextEncoder().encode(json).length > maxBytes;
}

async function toQueued(
  event: SdkEvent,
  ts: Date,
  ctx: IngestContext,
  agent: { parsed: ParsedUserAgent; relay: string | null | undefined },
  email: (raw: string | null | undefined) => Promise<string | null>,
  phone: (raw: string | null | undefined, region: string | null) => Promise<PhoneHashes | null>,
): Promise<QueuedEvent> {
  const [emailSha256, phoneHashed] = await Promise.all([
    email(event.email),
    phone(event.phone, event.phoneCountry ?? ctx.country),
  ]);
  const phoneSha256 = phoneHashed?.sha256 ?? null;
  const relayPhoneSha256 = phoneHashed?.relay;
  const device = event.device ?? {};
  const consentAds = event.consent?.ads ?? null;
  const idfa = device.idfa && device.idfa !== ZERO_AD_ID ? device.idfa : undefined;
  const gaid = device.gaid && device.gaid !== ZERO_AD_ID ? device.gaid : undefined;
  const queued: QueuedEvent = {
    eventId: event.eventId ?? crypto.randomUUID(),
    name: event.name,
    userId: event.userId ?? null,
    anonymousId: event.anonymousId ?? null,
    timestamp: ts.toISOString(),
    appId: event.appId ?? null,
    // What the SDK reported about the device wins over what we read from the User-Agent.
    os: device.os ?? agent.parsed.os,
    osVersion: device.osVersion ?? agent.parsed.osVersion,
    deviceModel: device.model ?? agent.parsed.deviceModel,
    browser: agent.parsed.browser,
    country: ctx.country,
    region: ctx.region,
    emailSha256,
    phoneSha256,
    properties: event.properties ?? {},
    consentAds,
  };
  // Ad ids ride to the relays only with consent; refusing ads consent removes them here, at the edge.
  if (consentAds !== false && (idfa || gaid)) queued.adIds = { ...(idfa && { idfa }), ...(gaid && { gaid }) };
  // Each platform's own phone hash, made here because the raw number goes no further than this function.
  // Like the ad ids, they exist only for ad platforms: refused ads consent leaves them out.
  if (consentAds !== false && relayPhoneSha256) queued.relayPhone = relayPhoneSha256;
  if (consentAds !== false && event.adServicesToken) queued.adServicesToken = event.adServicesToken;
  // Meta requires both for website events; they exist only for the relays, so the same consent rule applies.
  if (consentAds !== false && agent.relay) queued.userAgent = agent.relay;
  if (consentAds !== false && event.pageUrl) queued.pageUrl = event.pageUrl;
  return queued;
}
