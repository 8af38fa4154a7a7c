import { sql } from "kysely";
import { type Db, type Tx, withTenant } from "../../shared/db";
import type { Destination, Keyring } from "../../shared/destinations";
import { RELAY_MAX_EVENTS_PER_BATCH, type RelayMessage } from "../../shared/schemas/relay";
import type { TokenDecryptError } from "../destinations/crypto";
import { setDestinationStatus } from "../destinations/store";
import { retryDelaySeconds } from "../events/retryDelay";
import {
  type DeliveryAttempt,
  recordDeliveryAttempts,
  storeAppleAttributions,
  storeDeadLetter,
} from "./deliveries";
import { DestinationCache, destinationKey, loadRelayDestinations } from "./destinationCache";
import { notErased } from "./erasure";
import { type RelayEndpoints, type SendDeps, sendToDestination } from "./send";
import { countSkips, type Skipped } from "./skips";

// The relay Worker's work for one message (one batch for one destination), as plain functions so the
// decisions (ack, retry after how long, dead-letter) are the same wherever they run.

export interface RelayContext {
  db: Db;
  keyring: Keyring;
  endpoints: RelayEndpoints;
  deps: SendDeps;
  retryBaseSeconds: number;
  retryMaxSeconds: number;
  /** Decrypted destinations kept between batches (the Worker's isolate); none: each call reads afresh. */
  destinations?: DestinationCache;
}

type Write = (tx: Tx) => Promise<void>;

export type RelayDecision =
  | { kind: "ack"; status: string; sent: number }
  | { kind: "retry"; delaySeconds: number; error: string };

interface Item {
  message: RelayMessage;
  attempts: number;
}

/** A message after the erasure check: the events that may still be sent, and how many were erased. */
interface Checked extends Item {
  erased: number;
}

interface Sent {
  decision: RelayDecision;
  attempt: DeliveryAttempt;
}

/**
 * One platform call for one or more batches of the same project and destination (≤ 1,000 events in all),
 * and how to record it. Retryable failures (5xx, 429, timeouts) come back as a retry with exponential
 * backoff per batch, never shorter than the platform's Retry-After; once the queue's max_retries are spent,
 * Cloudflare moves the message to the dead-letter queue (see relayDeadLetter). A 4xx is a verdict:
 * recorded, dead-lettered at once (replayable after a fix), never retried.
 */
async function sendCall(
  ctx: RelayContext,
  items: Checked[],
  destination: Destination | undefined,
): Promise<{ sent: Sent[]; write?: Write }> {
  const erasedOf = new Map(items.map((i) => [i.message, i.erased]));
  const base = (m: RelayMessage) => ({
    orgId: m.orgId,
    projectId: m.projectId,
    batchId: m.batchId,
    destination: m.destination,
    eventCount: m.events.length + (erasedOf.get(m) ?? 0),
  });
  // The delivery log counts erased events among the skipped ones.
  const skipsOf = (m: RelayMessage, skipped: Skipped[]) => {
    const erased = erasedOf.get(m) ?? 0;
    return { ...countSkips(skipped), ...(erased > 0 ? { user_erased: erased } : {}) };
  };
  if (!destination?.enabled) {
    // Switched off (or removed) after the events were queued: the partner's switch wins, nothing is sent.
    const at = ctx.deps.now();
    return {
      sent: items.map(({ message: m }) => ({
        decision: { kind: "ack", status: "skipped", sent: 0 },
        attempt: {
          ...base(m),
          sentCount: 0,
          skipped: { destination_disabled: m.events.length, ...skipsOf(m, []) },
          status: "skipped",
          responseCode: null,
          error: null,
          at,
        },
      })),
    };
  }

  const events = items.flatMap((i) => i.message.events);
  const outcome = await sendToDestination(destination, events, ctx.endpoints, ctx.deps);
  const at = ctx.deps.now();
  const skippedOf = (m: RelayMessage) => {
    const ids = new Set(m.events.map((e) => e.eventId));
    return outcome.skipped.filter((s) => ids.has(s.eventId));
  };
  const first = items[0]?.message as RelayMessage;

  if (outcome.kind === "delivered") {
    return {
      sent: items.map(({ message: m }) => {
        const skipped = skippedOf(m);
        const sent =
          destination.kind === "apple-search-ads"
            ? outcome.attributions.filter((a) => m.events.some((e) => e.eventId === a.eventId)).length
            : m.events.length - skipped.length;
        const status = sent === 0 && skipped.length === m.events.length ? "skipped" : "delivered";
        return {
          decision: { kind: "ack", status, sent },
          attempt: {
            ...base(m),
            sentCount: sent,
            skipped: skipsOf(m, skipped),
            status,
            responseCode: outcome.status,
            error: null,
            at,
          },
        };
      }),
      write: async (tx) => {
        // A user erased while AdServices answered gets no record: the rule is checked again here.
        const keep = new Set(
          await notErased(
            tx,
            first.projectId,
            outcome.attributions.map((a) => a.eventId),
          ),
        );
        const attributions = outcome.attributions.filter((a) => keep.has(a.eventId));
        await storeAppleAttributions(tx, first.orgId, first.projectId, attributions, at);
        if (destination.status === "failing" && outcome.sent > 0) {
          await setDestinationStatus(tx, first.projectId, first.destination, "active", at);
        }
      },
    };
  }

  if (outcome.kind === "rejected") {
    return {
      sent: items.map(({ message: m }) => ({
        decision: { kind: "ack", status: "rejected", sent: 0 },
        attempt: {
          ...base(m),
          sentCount: 0,
          skipped: skipsOf(m, skippedOf(m)),
          status: "rejected",
          responseCode: outcome.status,
          error: outcome.error,
          at,
        },
      })),
      write: async (tx) => {
        for (const { message: m } of items) {
          await storeDeadLetter(tx, {
            ...base(m),
            reason: "rejected",
            responseCode: outcome.status,
            error: outcome.error,
            events: m.events,
            at,
          });
        }
        await setDestinationStatus(tx, first.projectId, first.destination, "failing", at);
      },
    };
  }

  return {
    sent: items.map(({ message: m, attempts }) => ({
      decision: {
        kind: "retry",
        delaySeconds: Math.max(
          retryDelaySeconds(attempts, ctx.retryBaseSeconds, ctx.retryMaxSeconds),
          outcome.retryAfterSeconds ?? 0,
        ),
        error: outcome.error,
      },
      attempt: {
        ...base(m),
        sentCount: 0,
        skipped: skipsOf(m, skippedOf(m)),
        status: "retrying",
        responseCode: outcome.status,
        error: outcome.error,
        at,
      },
    })),
  };
}

/**
 * Groups a queue batch's messages into platform calls: same project and destination, whole messages,
 * at most 1,000 events per call (the platforms' limit; one queue message holds fewer, since a message
 * is at most 128 KB). Apple's calls are per token anyway, so its batches are not merged.
 */
function plan(items: Item[]): number[][] {
  const calls: number[][] = [];
  const open = new Map<string, { list: number[]; events: number }>();
  for (const [i, item] of items.entries()) {
    const m = item.message;
    const key = `${m.projectId}/${m.destination}`;
    const current = open.get(key);
    if (
      m.destination !== "apple-search-ads" &&
      current &&
      current.events + m.events.length <= RELAY_MAX_EVENTS_PER_BATCH
    ) {
      current.list.push(i);
      current.events += m.events.length;
      continue;
    }
    const fresh = { list: [i], events: m.events.length };
    calls.push(fresh.list);
    open.set(key, fresh);
  }
  return calls;
}

/**
 * One queue batch: destinations are read once per org (one transaction, every project of the batch), the
 * calls go out concurrently, and the attempts are recorded in one transaction per org. A failure on our
 * side (database, keyring) is thrown for the org's messages, which the Worker then retries.
 */
export async function relayMessages(
  ctx: RelayContext,
  items: Item[],
): Promise<PromiseSettledResult<RelayDecision>[]> {
  const byOrg = new Map<string, number[]>();
  items.forEach((item, index) => {
    const list = byOrg.get(item.message.orgId) ?? [];
    list.push(index);
    byOrg.set(item.message.orgId, list);
  });
  const results: PromiseSettledResult<RelayDecision>[] = new Array(items.length);
  await Promise.all(
    [...byOrg].map(async ([orgId, indexes]) => {
      try {
        // Only the destinations this batch sends to, each decrypted on its own: a token that cannot be
        // read (its key left the ring) fails that destination's calls alone, not the org's other ones.
        const wanted = new Map<string, { projectId: string; kind: RelayMessage["destination"] }>();
        for (const i of indexes) {
          const m = (items[i] as Item).message;
          wanted.set(destinationKey(m.projectId, m.destination), {
            projectId: m.projectId,
            kind: m.destination,
          });
        }
        let loaded = new Map<string, Destination | null | TokenDecryptError>();
        const checked = new Map<number, Checked>();
        const cache = ctx.destinations ?? new DestinationCache();
        let live = indexes;
        await withTenant(ctx.db, orgId, async (tx) => {
          // A project being deleted (or gone with its org) sends nothing and records nothing: its messages
          // are dropped, so no row is written behind the cascade erasing it (functions/lifecycle).
          const projectIds = [...new Set(indexes.map((i) => (items[i] as Item).message.projectId))];
          const { rows: alive } = await sql<{ id: string }>`
            select id from projects where id = any(${projectIds}::text[]) and deleted_at is null
          `.execute(tx);
          const aliveIds = new Set(alive.map((r) => r.id));
          for (const i of indexes) {
            if (aliveIds.has((items[i] as Item).message.projectId)) continue;
            results[i] = { status: "fulfilled", value: { kind: "ack", status: "skipped", sent: 0 } };
          }
          live = indexes.filter((i) => aliveIds.has((items[i] as Item).message.projectId));
          if (live.length === 0) return;
          loaded = await loadRelayDestinations(tx, wanted, ctx.keyring, cache);
          // Erasure: a user deleted or suppressed since the events were queued is not sent. One check per
          // project, from the earliest receipt among its messages (a replay has none: every rule counts).
          const byProject = new Map<string, number[]>();
          for (const i of live) {
            const projectId = (items[i] as Item).message.projectId;
            byProject.set(projectId, [...(byProject.get(projectId) ?? []), i]);
          }
          for (const [projectId, members] of byProject) {
            const messages = members.map((i) => (items[i] as Item).message);
            const times = messages.map((m) => m.receivedAt);
            const since = times.every((t) => t !== undefined) ? times.sort()[0] : undefined;
            const ids = messages.flatMap((m) => m.events.map((e) => e.eventId));
            const kept = new Set(await notErased(tx, projectId, ids, since));
            for (const i of members) {
              const item = items[i] as Item;
              const events = item.message.events.filter((e) => kept.has(e.eventId));
              const erased = item.message.events.length - events.length;
              checked.set(i, { ...item, message: { ...item.message, events }, erased });
            }
          }
        });
        if (live.length === 0) return;
        const calls: number[][] = [];
        const ours: DeliveryAttempt[] = [];
        const at = ctx.deps.now();
        for (const i of live) {
          const c = checked.get(i) as Checked;
          if (c.message.events.length > 0) continue;
          // Every event of the batch was erased: nothing to send, the log says why.
          results[i] = { status: "fulfilled", value: { kind: "ack", status: "skipped", sent: 0 } };
          ours.push({
            orgId,
            projectId: c.message.projectId,
            batchId: c.message.batchId,
            destination: c.message.destination,
            eventCount: c.erased,
            sentCount: 0,
            skipped: { user_erased: c.erased },
            status: "skipped",
            responseCode: null,
            error: null,
            at,
          });
        }
        const sending = live.filter((i) => (checked.get(i) as Checked).message.events.length > 0);
        for (const call of plan(sending.map((i) => checked.get(i) as Checked))) {
          const callIndexes = call.map((k) => sending[k] as number);
          const m = (checked.get(callIndexes[0] as number) as Checked).message;
          const found = loaded.get(destinationKey(m.projectId, m.destination));
          if (found instanceof Error) {
            // Our side failed: the batch is retried, and the delivery log shows why meanwhile.
            for (const i of callIndexes) {
              results[i] = { status: "rejected", reason: found };
              const c = checked.get(i) as Checked;
              ours.push({
                orgId,
                projectId: c.message.projectId,
                batchId: c.message.batchId,
                destination: c.message.destination,
                eventCount: c.message.events.length + c.erased,
                sentCount: 0,
                skipped: c.erased > 0 ? { user_erased: c.erased } : {},
                status: "retrying",
                responseCode: null,
                error: "the destination's token cannot be decrypted: its key is not in DESTINATION_KEYS",
                at,
              });
            }
          } else calls.push(callIndexes);
        }
        const destinations = [...loaded.values()].filter(
          (d): d is Destination => d !== null && !(d instanceof Error),
        );
        const done = await Promise.all(
          calls.map((call) => {
            const callItems = call.map((i) => checked.get(i) as Checked);
            const m = callItems[0]?.message as RelayMessage;
            const destination = destinations.find(
              (d) => d.projectId === m.projectId && d.kind === m.destination,
            );
            return sendCall(ctx, callItems, destination);
          }),
        );
        await withTenant(ctx.db, orgId, async (tx) => {
          // The delivery log first (a dead letter marks its row), then the few extra writes.
          await recordDeliveryAttempts(tx, [...ours, ...done.flatMap((d) => d.sent.map((s) => s.attempt))]);
          for (const d of done) if (d.write) await d.write(tx);
        });
        done.forEach((d, c) => {
          d.sent.forEach((s, k) => {
            results[(calls[c] as number[])[k] as number] = { status: "fulfilled", value: s.decision };
          });
        });
      } catch (reason) {
        for (const i of indexes) results[i] = { status: "rejected", reason };
      }
    }),
  );
  return results;
}

/** One message on its own (tests and callers outside a queue batch). */
export async function relayBatch(
  ctx: RelayContext,
  m: RelayMessage,
  attempts: number,
): Promise<RelayDecision> {
  const [result] = await relayMessages(ctx, [{ message: m, attempts }]);
  if (result?.status === "fulfilled") return result.value;
  throw result?.reason;
}

/**
 * The dead-letter queue's consumer: a batch that failed every attempt is stored (without device ids or
 * AdServices tokens) for replay, its delivery row says so, and the destination is marked failing until a
 * later batch succeeds.
 */
export async function relayDeadLetter(db: Db, m: RelayMessage, at: Date): Promise<void> {
  await withTenant(db, m.orgId, async (tx) => {
    const last = await tx
      .selectFrom("relay_deliveries")
      .select(["response_code", "error"])
      .where("project_id", "=", m.projectId)
      .where("batch_id", "=", m.batchId)
      .executeTakeFirst();
    await storeDeadLetter(tx, {
      orgId: m.orgId,
      projectId: m.projectId,
      batchId: m.batchId,
      destination: m.destination,
      reason: "max_attempts",
      responseCode: last?.response_code ?? null,
      error: last?.error ?? null,
      events: m.events,
      at,
    });
    await setDestinationStatus(tx, m.projectId, m.destination, "failing", at);
  });
}
