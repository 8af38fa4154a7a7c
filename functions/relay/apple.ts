import { z } from "zod";
import type { RelayEvent } from "../../shared/schemas/relay";
import { callPlatform, type Fetch } from "./http";
import type { Skipped } from "./skips";

// Apple Search Ads attribution (AdServices): the app's attribution token is POSTed as text/plain to the
// AdServices API, which answers with the attribution record. Apple's advice: a 404 means the record is not
// ready yet, retry up to 3 times at 5-second intervals; a 400 means the token is invalid (don't retry).
// The token itself is a one-day credential: it is never logged, never in the delivery log.

const appleRecordSchema = z.object({
  attribution: z.boolean(),
  orgId: z.number().int().optional(),
  campaignId: z.number().int().optional(),
  adGroupId: z.number().int().optional(),
  keywordId: z.number().int().optional(),
  adId: z.number().int().optional(),
  conversionType: z.string().max(64).optional(),
  claimType: z.string().max(64).optional(),
  countryOrRegion: z.string().max(8).optional(),
});

/** One user's attribution record as stored (apple_attributions). */
export interface AppleAttribution {
  userId: string;
  eventId: string;
  attribution: boolean;
  orgId: number | null;
  campaignId: number | null;
  adGroupId: number | null;
  keywordId: number | null;
  adId: number | null;
  conversionType: string | null;
  claimType: string | null;
  countryOrRegion: string | null;
}

export interface AppleOptions {
  url: string;
  timeoutMs: number;
  /** Apple advises 5 s; a var so tests can wait less. */
  notFoundRetryIntervalMs: number;
  notFoundRetries: number;
}

export type AppleResult =
  | { kind: "done"; attributions: AppleAttribution[]; skipped: Skipped[]; status: number | null }
  | { kind: "retry"; status: number | null; retryAfterSeconds: number | null; error: string };

/** Tokens resolved at once; each may wait out up to three 404s, so they are not done one by one. */
const CONCURRENCY = 10;

async function resolveOne(
  e: RelayEvent & { adServicesToken: string; userId: string },
  options: AppleOptions,
  deps: { fetch: Fetch; now: () => Date; sleep: (ms: number) => Promise<void> },
): Promise<
  | { kind: "record"; record: AppleAttribution; status: number }
  | { kind: "skip"; skipped: Skipped; status: number }
  | { kind: "retry"; status: number | null; retryAfterSeconds: number | null; error: string }
> {
  for (let attempt = 0; ; attempt++) {
    const result = await callPlatform(
      deps.fetch,
      options.url,
      { method: "POST", headers: { "Content-Type": "text/plain" }, body: e.adServicesToken },
      { timeoutMs: options.timeoutMs, now: deps.now(), secrets: [e.adServicesToken] },
    );
    if (result.kind === "retry") return result;
    if (result.kind === "rejected") {
      if (result.status === 404 && attempt < options.notFoundRetries) {
        await deps.sleep(options.notFoundRetryIntervalMs);
        continue;
      }
      const reason = result.status === 404 ? "attribution_not_found" : "attribution_token_invalid";
      return { kind: "skip", skipped: { eventId: e.eventId, reason }, status: result.status };
    }
    const parsed = appleRecordSchema.safeParse(result.body);
    if (!parsed.success) {
      return {
        kind: "retry",
        status: result.status,
        retryAfterSeconds: null,
        error: "unexpected answer shape",
      };
    }
    const r = parsed.data;
    return {
      kind: "record",
      status: result.status,
      record: {
        userId: e.userId,
        eventId: e.eventId,
        attribution: r.attribution,
        orgId: r.orgId ?? null,
        campaignId: r.campaignId ?? null,
        adGroupId: r.adGroupId ?? null,
        keywordId: r.keywordId ?? null,
        adId: r.adId ?? null,
        conversionType: r.conversionType ?? null,
        claimType: r.claimType ?? null,
        countryOrRegion: r.countryOrRegion ?? null,
      },
    };
  }
}

/**
 * Resolves the tokens in a batch, one per user (see below). Events without a token or a user id (the record is stored on the user)
 * are skipped with a reason. A 5xx, 429 or timeout on any token makes the whole batch retry: storing a
 * record is an upsert, so the tokens already resolved are harmless to ask again.
 */
export async function resolveAppleAttributions(
  events: RelayEvent[],
  options: AppleOptions,
  deps: { fetch: Fetch; now: () => Date; sleep: (ms: number) => Promise<void> },
): Promise<AppleResult> {
  const skipped: Skipped[] = [];
  // One call per user: the record is stored per user, so only the user's latest token (by event time,
  // the later one in the batch on a tie) is asked about; the user's other tokens are skipped as superseded.
  const latest = new Map<string, RelayEvent & { adServicesToken: string; userId: string }>();
  for (const e of events) {
    if (!e.adServicesToken) skipped.push({ eventId: e.eventId, reason: "no_attribution_token" });
    else if (e.userId === null) skipped.push({ eventId: e.eventId, reason: "no_user_id" });
    else {
      const prev = latest.get(e.userId);
      const candidate = { ...e, adServicesToken: e.adServicesToken, userId: e.userId };
      if (!prev) latest.set(e.userId, candidate);
      else if (Date.parse(e.timestamp) >= Date.parse(prev.timestamp)) {
        skipped.push({ eventId: prev.eventId, reason: "attribution_token_superseded" });
        latest.set(e.userId, candidate);
      } else skipped.push({ eventId: e.eventId, reason: "attribution_token_superseded" });
    }
  }
  const todo = [...latest.values()];
  const attributions: AppleAttribution[] = [];
  let status: number | null = null;
  for (let i = 0; i < todo.length; i += CONCURRENCY) {
    const results = await Promise.all(
      todo.slice(i, i + CONCURRENCY).map((e) => resolveOne(e, options, deps)),
    );
    for (const r of results) {
      if (r.kind === "retry") return r;
      status = r.status;
      if (r.kind === "record") attributions.push(r.record);
      else skipped.push(r.skipped);
    }
  }
  return { kind: "done", attributions, skipped, status };
}
