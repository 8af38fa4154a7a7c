import { parseUserAgent } from "../../functions/ingest/parseUserAgent";
import { sha256Hex } from "../../shared/hash";
import type { EventsMessage, QueuedEvent } from "../../shared/schemas/queue";

// Event traffic that looks like a web SDK's: a handful of users per batch, each event with an id, a user,
// email and phone (hashed at the edge), ~10 properties including a nested object, and a browser UA.
// Sizes matter more than values here: a 50-event body is ~25 KB, like a real page-view-heavy batch.

export const BROWSER_USER_AGENT =
  "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) " +
  "Chrome/126.0.0.0 Safari/537.36";

/** Queued events carry what ingest makes of that User-Agent. */
const PARSED_UA = parseUserAgent(BROWSER_USER_AGENT);

const NAMES = ["page_view", "page_view", "page_view", "screen_view", "add_to_cart", "search", "purchase"];
const PATHS = ["/", "/pricing", "/docs/getting-started", "/blog/privacy-first-analytics", "/checkout"];
/** Users recur across batches, so sdk_users sees updates of existing rows, not only inserts. */
const USER_POOL = 2_000;
const USERS_PER_BATCH = 5;

export interface SdkEvent {
  eventId: string;
  name: string;
  userId: string;
  /** The SDK sends it with every event; with userId it makes the consumer upsert an identity link. */
  anonymousId: string;
  timestamp: string;
  appId: string;
  email: string;
  phone: string;
  properties: Record<string, unknown>;
}

function userNo(batch: number, index: number): number {
  return (batch * USERS_PER_BATCH + (index % USERS_PER_BATCH)) % USER_POOL;
}

/** One event as an SDK sends it; `seq` makes the event id unique within a run. */
export function sdkEvent(runTag: string, batch: number, index: number, nowMs: number): SdkEvent {
  const user = userNo(batch, index);
  const seq = batch * 1_000 + index;
  return {
    eventId: `evt_${runTag}_${seq.toString(36).padStart(8, "0")}`,
    name: NAMES[seq % NAMES.length]!,
    userId: `user_${user.toString().padStart(6, "0")}`,
    anonymousId: `anon_${user.toString().padStart(6, "0")}`,
    // Spread over the last three days: several event_daily_counts rows, all inside retention.
    timestamp: new Date(nowMs - ((seq * 7_919) % 259_200_000)).toISOString(),
    appId: "web",
    email: `Jane.Doe+${user}@Example.com`,
    phone: `+49 170 ${(1_000_000 + user).toString()}`,
    properties: {
      path: PATHS[seq % PATHS.length],
      referrer: "https://www.google.com/",
      title: "Layers — privacy-first analytics",
      plan: user % 3 === 0 ? "pro" : "free",
      price: 19.99,
      currency: "EUR",
      items: (seq % 5) + 1,
      utm_source: "newsletter",
      utm_campaign: "spring_launch",
      experiment: { id: "exp_42", variant: seq % 2 === 0 ? "a" : "b" },
    },
  };
}

/** A POST /l/events body of `size` events, with the envelope's sentAt the SDK adds. */
export function ingestBody(runTag: string, batch: number, size: number, nowMs: number): string {
  const events = Array.from({ length: size }, (_, i) => sdkEvent(runTag, batch, i, nowMs));
  return JSON.stringify({ sentAt: new Date(nowMs).toISOString(), events });
}

/**
 * Queue messages as the ingest Worker would enqueue them for `total` events: already normalized
 * (hashes, parsed UA, geo), `perMessage` events each. Hashes are computed once per user, not per event:
 * generating input is not what is being measured.
 */
export async function queuedMessages(
  tenant: { orgId: string; projectId: string },
  runTag: string,
  total: number,
  perMessage: number,
): Promise<EventsMessage[]> {
  const nowMs = Date.now();
  const hashes = new Map<number, { email: string; phone: string }>();
  const messages: EventsMessage[] = [];
  for (let batch = 0; batch * perMessage < total; batch++) {
    const size = Math.min(perMessage, total - batch * perMessage);
    const events: QueuedEvent[] = [];
    for (let i = 0; i < size; i++) {
      const raw = sdkEvent(runTag, batch, i, nowMs);
      const user = userNo(batch, i);
      let hashed = hashes.get(user);
      if (!hashed) {
        hashed = {
          email: await sha256Hex(raw.email.trim().toLowerCase()),
          phone: await sha256Hex(raw.phone.replace(/\D/g, "")),
        };
        hashes.set(user, hashed);
      }
      events.push({
        eventId: raw.eventId,
        name: raw.name,
        userId: raw.userId,
        anonymousId: raw.anonymousId,
        timestamp: raw.timestamp,
        appId: raw.appId,
        ...PARSED_UA,
        country: "DE",
        region: "Bavaria",
        emailSha256: hashed.email,
        phoneSha256: hashed.phone,
        properties: raw.properties,
        consentAds: null,
      });
    }
    messages.push({
      v: 1,
      orgId: tenant.orgId,
      projectId: tenant.projectId,
      receivedAt: new Date(nowMs).toISOString(),
      events,
    });
  }
  return messages;
}
