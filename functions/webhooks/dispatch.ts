import { sql } from "kysely";
import type { Db } from "../../shared/db";
import { QUEUE_BATCH_LIMIT, type WebhookQueue, type WebhookQueueMessage } from "./queueMessage";

// The Cron side of delivery (layers_maintenance: it spans orgs). Every minute it
//   1. dispatches the outbox: messages not yet put on the Queue (dispatched_at null) → one Queue message per
//      pending delivery, then marks them dispatched. The Queue first, the mark second: a run that dies
//      between the two sends them again next minute (the Worker's conditional claim makes that one attempt,
//      see queueMessage.ts), and a message is never marked without having been sent;
//   2. re-enqueues due retries (pending deliveries whose next_attempt_at has come) and deliveries whose last
//      claim was lost (a Worker that died mid-attempt leaves next_attempt_at at the end of its lease);
//   3. purges the attempt log and finished messages after 30 days, in bounded chunks.
// Each enqueued delivery's next_attempt_at moves to now + lease, so the next run does not put it on the
// Queue again while it waits there; if the Queue loses it, the lease expires and step 2 picks it up.

export interface DispatchOptions {
  now: Date;
  /** Seconds a delivery put on the Queue is left to the Worker before the sweep sends it again. */
  leaseSeconds: number;
  /** At most this many deliveries per run (the rest wait a minute). */
  budget: number;
}

interface DeliveryKey {
  message_id: string;
  endpoint_id: string;
  org_id: string;
  attempts: number;
}

const toQueueMessage = (d: DeliveryKey): WebhookQueueMessage => ({
  v: 1,
  orgId: d.org_id,
  messageId: d.message_id,
  endpointId: d.endpoint_id,
  attempts: d.attempts,
});

async function enqueue(queue: WebhookQueue, deliveries: DeliveryKey[]): Promise<void> {
  for (let i = 0; i < deliveries.length; i += QUEUE_BATCH_LIMIT) {
    await queue.sendBatch(
      deliveries
        .slice(i, i + QUEUE_BATCH_LIMIT)
        .map((d) => ({ body: toQueueMessage(d), contentType: "json" as const })),
    );
  }
}

/** Moves the enqueued deliveries' next_attempt_at to the end of their lease (only those, by key). */
async function lease(db: Db, deliveries: DeliveryKey[], until: Date): Promise<void> {
  if (deliveries.length === 0) return;
  await db
    .updateTable("webhook_deliveries")
    .set({ next_attempt_at: until })
    .where("status", "=", "pending")
    .where((eb) =>
      eb.or(
        deliveries.map((d) =>
          eb.and([eb("message_id", "=", d.message_id), eb("endpoint_id", "=", d.endpoint_id)]),
        ),
      ),
    )
    .execute();
}

/** Step 1 and 2 of one Cron run. Returns what was put on the Queue. */
export async function dispatchWebhooks(
  db: Db,
  queue: WebhookQueue,
  options: DispatchOptions,
): Promise<{ messages: number; deliveries: number; retries: number; more: boolean }> {
  const leaseUntil = new Date(options.now.getTime() + options.leaseSeconds * 1000);
  let budget = options.budget;
  let messages = 0;
  let deliveries = 0;
  let retries = 0;

  // 1. The outbox, oldest first, a chunk of messages at a time.
  while (budget > 0) {
    const chunk = await db
      .selectFrom("webhook_messages")
      .select("id")
      .where("dispatched_at", "is", null)
      .orderBy("created_at")
      .limit(Math.min(QUEUE_BATCH_LIMIT, budget))
      .execute();
    if (chunk.length === 0) break;
    const ids = chunk.map((m) => m.id);
    const pending = await db
      .selectFrom("webhook_deliveries")
      .select(["message_id", "endpoint_id", "org_id", "attempts"])
      .where("message_id", "in", ids)
      .where("status", "=", "pending")
      .execute();
    await enqueue(queue, pending);
    await lease(db, pending, leaseUntil);
    await db
      .updateTable("webhook_messages")
      .set({ dispatched_at: options.now })
      .where("id", "in", ids)
      .where("dispatched_at", "is", null)
      .execute();
    messages += chunk.length;
    deliveries += pending.length;
    budget -= Math.max(pending.length, chunk.length);
  }

  // 2. Due retries and lapsed leases (of dispatched messages: undispatched ones are step 1's).
  while (budget > 0) {
    const due = await db
      .selectFrom("webhook_deliveries as d")
      .innerJoin("webhook_messages as m", "m.id", "d.message_id")
      .select(["d.message_id", "d.endpoint_id", "d.org_id", "d.attempts"])
      .where("d.status", "=", "pending")
      .where("d.next_attempt_at", "<=", options.now)
      .where("m.dispatched_at", "is not", null)
      .orderBy("d.next_attempt_at")
      .limit(Math.min(QUEUE_BATCH_LIMIT, budget))
      .execute();
    if (due.length === 0) break;
    await enqueue(queue, due);
    await lease(db, due, leaseUntil);
    retries += due.length;
    budget -= due.length;
  }
  return { messages, deliveries, retries, more: budget <= 0 };
}

/** The attempt log and finished messages are kept this long (README: "Delivery attempts are logged 30 days"). */
export const WEBHOOK_LOG_DAYS = 30;

/**
 * Step 3: attempts older than 30 days, then messages older than 30 days with no pending delivery (their
 * deliveries go with them, by cascade). Chunks of `chunk` rows by primary key, at most `budget` per class.
 */
export async function purgeWebhookLog(
  db: Db,
  now: Date,
  options: { chunk: number; budget: number },
): Promise<{ attempts: number; messages: number; more: boolean }> {
  const cutoff = new Date(now.getTime() - WEBHOOK_LOG_DAYS * 86_400_000);
  let attempts = 0;
  let messages = 0;
  let more = false;
  while (attempts < options.budget) {
    const { rows } = await sql<{ id: string }>`
      delete from webhook_attempts where id in (
        select id from webhook_attempts where attempted_at < ${cutoff} order by attempted_at limit ${options.chunk}
      ) returning id`.execute(db);
    attempts += rows.length;
    if (rows.length < options.chunk) break;
    if (attempts >= options.budget) more = true;
  }
  while (messages < options.budget) {
    const { rows } = await sql<{ id: string }>`
      delete from webhook_messages where id in (
        select m.id from webhook_messages m
        where m.created_at < ${cutoff}
          and not exists (
            select 1 from webhook_deliveries d where d.message_id = m.id and d.status = 'pending'
          )
        order by m.created_at limit ${options.chunk}
      ) returning id`.execute(db);
    messages += rows.length;
    if (rows.length < options.chunk) break;
    if (messages >= options.budget) more = true;
  }
  return { attempts, messages, more };
}
