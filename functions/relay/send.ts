import type { Destination, MetaDestination, TikTokDestination } from "../../shared/destinations";
import type { RelayEvent } from "../../shared/schemas/relay";
import { type AppleAttribution, resolveAppleAttributions } from "./apple";
import { callPlatform, type Fetch, platformMessage, safeErrorText } from "./http";
import { buildMetaEvents } from "./meta";
import type { Skipped } from "./skips";
import { buildTikTokEvents } from "./tiktok";

/** Where the platforms are (vars, so tests point them at local fakes) and how long to wait for them. */
export interface RelayEndpoints {
  /** e.g. https://graph.facebook.com/v25.0 */
  metaApiBase: string;
  /** e.g. https://business-api.tiktok.com/open_api/v1.3 */
  tiktokApiBase: string;
  /** https://api-adservices.apple.com/api/v1/ */
  appleAdServicesUrl: string;
  timeoutMs: number;
  appleNotFoundRetryIntervalMs: number;
}

export interface SendDeps {
  fetch: Fetch;
  now: () => Date;
  sleep: (ms: number) => Promise<void>;
}

export const defaultSendDeps: SendDeps = {
  fetch: (input, init) => fetch(input, init),
  now: () => new Date(),
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
};

/** Apple: retry a 404 this many times (Apple's advice), at endpoints.appleNotFoundRetryIntervalMs. */
const APPLE_NOT_FOUND_RETRIES = 3;

/**
 * What one send came to. `sent` counts the events the platform accepted; `skipped` the ones left out
 * before sending (each with its reason). Error texts are already free of tokens and personal data.
 */
export type SendOutcome =
  | {
      kind: "delivered";
      status: number | null;
      sent: number;
      skipped: Skipped[];
      attributions: AppleAttribution[];
    }
  | {
      kind: "retry";
      status: number | null;
      retryAfterSeconds: number | null;
      error: string;
      skipped: Skipped[];
    }
  | { kind: "rejected"; status: number; error: string; skipped: Skipped[] };

function metaRequest(d: MetaDestination, data: unknown[], endpoints: RelayEndpoints) {
  const body: Record<string, unknown> = { data, access_token: d.accessToken };
  if (d.testEventCode) body.test_event_code = d.testEventCode;
  // The token rides in the body, not the query string, so it never lands in an access log or an error URL.
  return {
    url: `${endpoints.metaApiBase.replace(/\/+$/, "")}/${encodeURIComponent(d.datasetId)}/events`,
    init: { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) },
  };
}

function tiktokRequest(d: TikTokDestination, data: unknown[], endpoints: RelayEndpoints) {
  const body: Record<string, unknown> = { event_source: "web", event_source_id: d.pixelCode, data };
  if (d.testEventCode) body.test_event_code = d.testEventCode;
  return {
    url: `${endpoints.tiktokApiBase.replace(/\/+$/, "")}/event/track/`,
    init: {
      method: "POST",
      headers: { "Content-Type": "application/json", "Access-Token": d.accessToken },
      body: JSON.stringify(body),
    },
  };
}

/** TikTok answers HTTP 200 with its own code; 0 is success, 40100 is its rate limit. */
const TIKTOK_RATE_LIMITED = 40100;

/**
 * Sends one batch of relay events to one destination, as the relay Worker does and as the partner API's
 * test-send does. Events are validated per event first; an event that cannot be sent never fails the rest.
 */
export async function sendToDestination(
  destination: Destination,
  events: RelayEvent[],
  endpoints: RelayEndpoints,
  deps: SendDeps = defaultSendDeps,
): Promise<SendOutcome> {
  const now = deps.now();
  if (destination.kind === "apple-search-ads") {
    const result = await resolveAppleAttributions(
      events,
      {
        url: endpoints.appleAdServicesUrl,
        timeoutMs: endpoints.timeoutMs,
        notFoundRetryIntervalMs: endpoints.appleNotFoundRetryIntervalMs,
        notFoundRetries: APPLE_NOT_FOUND_RETRIES,
      },
      deps,
    );
    if (result.kind === "retry") return { ...result, skipped: [] };
    return {
      kind: "delivered",
      status: result.status,
      sent: result.attributions.length,
      skipped: result.skipped,
      attributions: result.attributions,
    };
  }

  const built =
    destination.kind === "meta" ? await buildMetaEvents(events, now) : await buildTikTokEvents(events);
  if (built.items.length === 0) {
    return { kind: "delivered", status: null, sent: 0, skipped: built.skipped, attributions: [] };
  }
  const request =
    destination.kind === "meta"
      ? metaRequest(destination, built.items, endpoints)
      : tiktokRequest(destination, built.items, endpoints);
  // Cut out of any error text, should a platform echo them: the token and the raw User-Agents.
  const secrets = [destination.accessToken, ...new Set(events.flatMap((e) => e.userAgent ?? []))];
  const result = await callPlatform(deps.fetch, request.url, request.init, {
    timeoutMs: endpoints.timeoutMs,
    now,
    secrets,
  });
  if (result.kind === "retry") return { ...result, skipped: built.skipped };
  if (result.kind === "rejected") {
    return { kind: "rejected", status: result.status, error: result.error, skipped: built.skipped };
  }
  if (destination.kind === "tiktok") {
    const code = (result.body as { code?: unknown } | null)?.code;
    if (code !== 0) {
      const error = safeErrorText(`TikTok code ${String(code)}: ${platformMessage(result.body)}`, secrets);
      if (code === TIKTOK_RATE_LIMITED) {
        return {
          kind: "retry",
          status: result.status,
          retryAfterSeconds: null,
          error,
          skipped: built.skipped,
        };
      }
      return { kind: "rejected", status: result.status, error, skipped: built.skipped };
    }
  }
  return {
    kind: "delivered",
    status: result.status,
    sent: built.items.length,
    skipped: built.skipped,
    attributions: [],
  };
}
