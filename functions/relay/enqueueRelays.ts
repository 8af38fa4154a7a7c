import type { Db } from "../../shared/db";
import { withTenant } from "../../shared/db";
import type { DestinationKind } from "../../shared/destinations";
import { newId } from "../../shared/ids";
import { QUEUE_LIMITS } from "../../shared/limits";
import type { EventsMessage, QueuedEvent } from "../../shared/schemas/queue";
import { RELAY_MAX_EVENTS_PER_BATCH, type RelayEvent, type RelayMessage } from "../../shared/schemas/relay";
import { mobilePlatform } from "./identity";

// The consumer's half of the relay: after persisting, one relay message per enabled destination with the
// events it may relay, each carrying only the transient fields its platform uses. Tokens are not needed
// here (the relay Worker decrypts them), so the consumer reads only which destinations are on and whether
// device ids may go to Meta.

/** The part of a Queue binding we use. */
export interface RelayQueue {
  sendBatch(messages: Iterable<MessageSendRequest<RelayMessage>>): Promise<unknown>;
}

export interface RelayTarget {
  kind: DestinationKind;
  /** Meta only: the partner's opt-in to send IDFA/GAID as madid. */
  sendDeviceIds: boolean;
}

/** The project's enabled destinations, none while its attribution layer is off (RLS scopes the read to the message's org). */
export async function enabledRelayTargets(db: Db, orgId: string, projectId: string): Promise<RelayTarget[]> {
  const rows = await withTenant(db, orgId, (tx) =>
    tx
      .selectFrom("destinations")
      .select(["kind", "config"])
      .where("project_id", "=", projectId)
      .where("enabled", "=", true)
      // The project's attribution layer switched off: nothing is relayed (functions/projects/layers.ts; no
      // row is the default, on). Read with the destinations, per message group: no cache, so a switch
      // applies to every message the consumer handles after it commits.
      .where(({ not, exists, selectFrom }) =>
        not(
          exists(
            selectFrom("project_layers")
              .select("project_id")
              .where("project_id", "=", projectId)
              .where("layer", "=", "attribution")
              .where("enabled", "=", false),
          ),
        ),
      )
      .orderBy("kind")
      .execute(),
  );
  return rows.map((r) => ({
    kind: r.kind,
    sendDeviceIds: r.kind === "meta" && r.config.sendDeviceIds === true,
  }));
}

function relayEvent(e: QueuedEvent, target: RelayTarget): RelayEvent | null {
  if (target.kind === "apple-search-ads") {
    // Apple needs only the token and the user to store the record on; nothing else travels.
    if (!e.adServicesToken || e.userId === null) return null;
  }
  const out: RelayEvent = {
    eventId: e.eventId,
    name: e.name,
    userId: e.userId,
    timestamp: e.timestamp,
    appId: e.appId,
    os: e.os,
    osVersion: e.osVersion,
    deviceModel: e.deviceModel,
    browser: e.browser,
    country: e.country,
    emailSha256: e.emailSha256,
    // No relay hash means no country code was known: better no `ph` than a hash Meta can never match.
    phoneSha256: e.relayPhone?.metaSha256 ?? null,
    phoneE164Sha256: e.relayPhone?.tiktokSha256 ?? null,
    properties: e.properties,
    consentAds: e.consentAds,
  };
  const deviceId = e.adIds?.idfa ?? e.adIds?.gaid;
  if (target.kind === "meta" && target.sendDeviceIds && e.consentAds !== false && deviceId)
    out.madid = deviceId;
  if (target.kind === "apple-search-ads" && e.adServicesToken) out.adServicesToken = e.adServicesToken;
  // Meta requires the User-Agent for website events; app events are matched without it, so it stays behind.
  if (target.kind === "meta" && e.userAgent && mobilePlatform(e) === null) out.userAgent = e.userAgent;
  if (target.kind !== "apple-search-ads" && e.pageUrl) out.pageUrl = e.pageUrl;
  return out;
}

const encoder = new TextEncoder();
const ENVELOPE_BYTES = 512;

/**
 * One or more relay messages per target for the events in `relayIds`: at most 1,000 events each (the
 * platforms' per-call limit) and within the queue's message size. Events refused for ads consent are
 * never relayed anywhere.
 */
export function buildRelayMessages(
  message: EventsMessage,
  relayIds: ReadonlySet<string>,
  targets: RelayTarget[],
  now: Date,
): RelayMessage[] {
  const eligible = message.events.filter((e) => relayIds.has(e.eventId) && e.consentAds !== false);
  const out: RelayMessage[] = [];
  for (const target of targets) {
    let events: RelayEvent[] = [];
    let bytes = ENVELOPE_BYTES;
    const flush = () => {
      if (events.length === 0) return;
      out.push({
        v: 1,
        batchId: newId("rb"),
        orgId: message.orgId,
        projectId: message.projectId,
        destination: target.kind,
        enqueuedAt: now.toISOString(),
        receivedAt: message.receivedAt,
        events,
      });
      events = [];
      bytes = ENVELOPE_BYTES;
    };
    for (const e of eligible) {
      const r = relayEvent(e, target);
      if (!r) continue;
      const size = encoder.encode(JSON.stringify(r)).byteLength + 1;
      if (events.length === RELAY_MAX_EVENTS_PER_BATCH || bytes + size > QUEUE_LIMITS.maxMessageBytes)
        flush();
      events.push(r);
      bytes += size;
    }
    flush();
  }
  return out;
}

/** Sends relay messages within the queue's per-call limits (≤ 100 messages, ≤ 250 KB). */
export async function enqueueRelayMessages(queue: RelayQueue, messages: RelayMessage[]): Promise<void> {
  let batch: MessageSendRequest<RelayMessage>[] = [];
  let batchBytes = 0;
  for (const body of messages) {
    const size = encoder.encode(JSON.stringify(body)).byteLength;
    if (batch.length === QUEUE_LIMITS.maxBatchMessages || batchBytes + size > QUEUE_LIMITS.maxBatchBytes) {
      await queue.sendBatch(batch);
      batch = [];
      batchBytes = 0;
    }
    batch.push({ body, contentType: "json" });
    batchBytes += size;
  }
  if (batch.length) await queue.sendBatch(batch);
}
