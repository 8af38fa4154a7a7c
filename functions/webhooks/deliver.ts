import { sql } from "kysely";
import { type Db, type Tx, withTenant } from "../../shared/db";
import type { Keyring } from "../../shared/destinations";
import { newId } from "../../shared/ids";
import { writeAudit } from "../audit/writeAudit";
import { webhookBody } from "./events";
import { emitWebhookEvent } from "./outbox";
import type { WebhookQueueMessage } from "./queueMessage";
import { nextAttemptAt } from "./schedule";
import { signingSecrets } from "./secrets";
import { type Fetch, type SendWebhookResult, sendWebhook } from "./send";

// The webhooks Worker's work for one Queue batch: one attempt at each delivery its messages name, in three
// steps per org, no transaction held while the receivers answer. The database work is shared: one claim
// and one record transaction per org and batch, however many deliveries (the relay's pattern), so a batch
// of 100 costs about what one delivery does.
//   1. claim (tenant transaction, the org's RLS): each delivery still pending with the attempt count its
//      message carries → count the attempt and lease it; decrypt its endpoint's active secrets in memory;
//   2. send (no transaction): signed POST, SSRF guard, no redirects, capped read, deadline (send.ts);
//   3. record (tenant transaction): the attempt row; succeeded on 2xx; 410 → endpoint disabled ("gone");
//      any other failure → the next attempt per the schedule, or failed when it is used up, and the
//      endpoint disabled ("failing") when nothing has reached it since that delivery's first attempt.
// A disabled endpoint is announced by a `webhook_endpoint.disabled` event to the org's other endpoints
// and an audit row, in the same transaction as the change.

export interface DeliverOptions {
  keyring: Keyring;
  /** Retry delays in seconds (schedule.ts). */
  schedule: readonly number[];
  /** Seconds the claim holds a delivery: a Worker that dies mid-attempt leaves it to the sweep after this. */
  leaseSeconds: number;
  timeoutMs: number;
  /**
   * Sends in flight at once, across the whole batch. A Worker invocation has at most 6 connections waiting
   * for an answer's headers (Cloudflare's limit; more are queued by the runtime, not refused). Each send's
   * deadline starts when its turn comes, so a hanging receiver delays the others but never spends their
   * deadline before their request has left.
   */
  concurrentSends: number;
  allowLocalHttp: boolean;
  now: () => Date;
  random?: () => number;
  fetch?: Fetch;
}

export type DeliverOutcome =
  /**
   * Nothing to do: already attempted under this count, finished, or gone (a duplicate Queue message); or
   * attempted, but a later attempt of the same delivery was claimed meanwhile and owns its state.
   */
  | { kind: "stale" }
  /** The endpoint was disabled or deleted after the event: the delivery is closed as failed, unsent. */
  | { kind: "endpoint_off" }
  | { kind: "succeeded"; statusCode: number }
  | { kind: "retry"; nextAttemptAt: Date; statusCode: number | null; errorCode: string }
  | {
      kind: "failed";
      statusCode: number | null;
      errorCode: string;
      disabled: "gone" | "failing" | null;
    };

const SYSTEM_ACTOR = { type: "system" as const, id: "webhooks" };

const keyOf = (m: { messageId: string; endpointId: string }) => `${m.messageId} ${m.endpointId}`;

interface Claimed {
  m: WebhookQueueMessage;
  url: string;
  secrets: string[];
  /** The attempt count including this attempt. */
  attempts: number;
  body: string;
}

interface ClaimResult {
  outcomes: Map<WebhookQueueMessage, DeliverOutcome>;
  claimed: Claimed[];
}

/** Rows (message_id, endpoint_id[, more]) as a VALUES list for a join. */
function pairs(list: WebhookQueueMessage[]) {
  return sql.join(list.map((m) => sql`(${m.messageId}::text, ${m.endpointId}::text, ${m.attempts}::int)`));
}

async function claim(
  tx: Tx,
  group: WebhookQueueMessage[],
  options: DeliverOptions,
  now: Date,
): Promise<ClaimResult> {
  const outcomes = new Map<WebhookQueueMessage, DeliverOutcome>();
  const { rows } = await sql<{
    message_id: string;
    endpoint_id: string;
    status: string;
    attempts: number;
    id: string;
    org_id: string;
    url: string;
    enabled: boolean;
    deleted_at: Date | null;
    secret_ciphertext: string;
    secret_key_id: string;
    previous_secret_ciphertext: string | null;
    previous_secret_key_id: string | null;
    previous_secret_expires_at: Date | null;
    event_type: string;
    payload: unknown;
    created_at: Date;
  }>`
    select d.message_id, d.endpoint_id, d.status, d.attempts, e.id, e.org_id, e.url, e.enabled,
      -- An org or a project being deleted sends nothing more: its deliveries close like a deleted endpoint's.
      case when exists (select 1 from organizations o where o.id = e.org_id and o.deleted_at is not null)
             or exists (select 1 from projects p where p.id = m.project_id and p.deleted_at is not null)
           then coalesce(e.deleted_at, now()) else e.deleted_at end as deleted_at,
      e.secret_ciphertext, e.secret_key_id, e.previous_secret_ciphertext, e.previous_secret_key_id,
      e.previous_secret_expires_at, m.event_type, m.payload, m.created_at
    from webhook_deliveries d
    join webhook_endpoints e on e.id = d.endpoint_id
    join webhook_messages m on m.id = d.message_id
    where (d.message_id, d.endpoint_id) in (select v.m, v.e from (values ${pairs(group)}) as v(m, e, a))
  `.execute(tx);
  const byKey = new Map(rows.map((r) => [`${r.message_id} ${r.endpoint_id}`, r]));
  const toClaim: WebhookQueueMessage[] = [];
  const toClose: WebhookQueueMessage[] = [];
  const seen = new Set<string>();
  for (const m of group) {
    const row = byKey.get(keyOf(m));
    // A duplicate of a message already in this batch, or a delivery attempted since it was enqueued.
    if (!row || row.status !== "pending" || row.attempts !== m.attempts || seen.has(keyOf(m))) {
      outcomes.set(m, { kind: "stale" });
      continue;
    }
    seen.add(keyOf(m));
    if (!row.enabled || row.deleted_at !== null) {
      toClose.push(m);
      outcomes.set(m, { kind: "endpoint_off" });
    } else toClaim.push(m);
  }
  if (toClose.length > 0) {
    await sql`
      update webhook_deliveries d set status = 'failed'
      from (values ${pairs(toClose)}) as v(m, e, a)
      where d.message_id = v.m and d.endpoint_id = v.e and d.attempts = v.a and d.status = 'pending'
    `.execute(tx);
  }
  if (toClaim.length === 0) return { outcomes, claimed: [] };
  // Decrypted before the claim: a keyring missing a key fails the transaction, and the Queue retries the
  // batch without an attempt having been counted. Once per endpoint.
  const secretsOf = new Map<string, Promise<string[]>>();
  const secretsFor = (endpointId: string) => {
    let found = secretsOf.get(endpointId);
    if (!found) {
      const row = rows.find((r) => r.endpoint_id === endpointId);
      if (!row) throw new Error("endpoint row vanished");
      found = signingSecrets(options.keyring, row, now);
      secretsOf.set(endpointId, found);
    }
    return found;
  };
  const secrets = await Promise.all(toClaim.map((m) => secretsFor(m.endpointId)));
  const leaseUntil = new Date(now.getTime() + options.leaseSeconds * 1000);
  const { rows: won } = await sql<{ message_id: string; endpoint_id: string; attempts: number }>`
    update webhook_deliveries d
    set attempts = d.attempts + 1, last_attempt_at = ${now}, next_attempt_at = ${leaseUntil}
    from (values ${pairs(toClaim)}) as v(m, e, a)
    where d.message_id = v.m and d.endpoint_id = v.e and d.attempts = v.a and d.status = 'pending'
    returning d.message_id, d.endpoint_id, d.attempts
  `.execute(tx);
  const wonByKey = new Map(won.map((w) => [`${w.message_id} ${w.endpoint_id}`, w.attempts]));
  const claimed: Claimed[] = [];
  toClaim.forEach((m, i) => {
    const attempts = wonByKey.get(keyOf(m));
    const row = byKey.get(keyOf(m));
    if (attempts === undefined || !row) {
      outcomes.set(m, { kind: "stale" });
      return;
    }
    claimed.push({
      m,
      url: row.url,
      secrets: secrets[i] ?? [],
      attempts,
      body: webhookBody({ eventType: row.event_type, createdAt: row.created_at, payload: row.payload }),
    });
  });
  return { outcomes, claimed };
}

/** Disables the endpoint (if still enabled), audits it and tells the org's other endpoints. */
async function disableEndpoint(
  tx: Tx,
  orgId: string,
  endpointId: string,
  reason: "gone" | "failing",
  now: Date,
): Promise<boolean> {
  const updated = await tx
    .updateTable("webhook_endpoints")
    .set({ enabled: false, disabled_reason: reason, disabled_at: now, updated_at: now })
    .where("id", "=", endpointId)
    .where("enabled", "=", true)
    .returning(["failing_since"])
    .executeTakeFirst();
  if (!updated) return false;
  await writeAudit(
    tx,
    orgId,
    {
      actor: SYSTEM_ACTOR,
      action: "webhook_endpoint.disabled",
      resourceType: "webhook_endpoint",
      resourceId: endpointId,
      requestId: null,
      before: { enabled: true },
      after: { enabled: false, disabledReason: reason },
    },
    now,
  );
  await emitWebhookEvent(tx, {
    orgId,
    type: "webhook_endpoint.disabled",
    payload: {
      webhookEndpointId: endpointId,
      reason,
      disabledAt: now.toISOString(),
      failingSince: updated.failing_since ? updated.failing_since.toISOString() : null,
      link: `/v1/webhook-endpoints/${endpointId}`,
    },
    now,
  });
  return true;
}

interface Sent {
  c: Claimed;
  result: SendWebhookResult;
  at: Date;
}

const succeeded = (r: SendWebhookResult) => r.errorCode === null && r.statusCode !== null;

async function record(
  tx: Tx,
  orgId: string,
  sent: Sent[],
  options: DeliverOptions,
): Promise<Map<WebhookQueueMessage, DeliverOutcome>> {
  const outcomes = new Map<WebhookQueueMessage, DeliverOutcome>();
  await tx
    .insertInto("webhook_attempts")
    .values(
      sent.map(({ c, result, at }) => ({
        id: newId("wha"),
        org_id: orgId,
        endpoint_id: c.m.endpointId,
        message_id: c.m.messageId,
        attempted_at: at,
        duration_ms: Math.max(0, Math.round(result.durationMs)),
        status_code: result.statusCode,
        error_code: result.errorCode,
        response_excerpt: result.responseExcerpt,
      })),
    )
    .execute();

  // Per delivery: its new status, when it is next due, the last answer's status.
  const updates: {
    c: Claimed;
    status: "pending" | "succeeded" | "failed";
    next: Date;
    code: number | null;
  }[] = [];
  const exhausted: Sent[] = [];
  const gone = new Set<string>();
  for (const s of sent) {
    const { c, result, at } = s;
    if (succeeded(s.result)) {
      updates.push({ c, status: "succeeded", next: at, code: result.statusCode });
      outcomes.set(c.m, { kind: "succeeded", statusCode: result.statusCode as number });
      continue;
    }
    const errorCode = result.errorCode ?? "http_status";
    if (result.statusCode === 410) {
      updates.push({ c, status: "failed", next: at, code: 410 });
      gone.add(c.m.endpointId);
      outcomes.set(c.m, { kind: "failed", statusCode: 410, errorCode, disabled: null });
      continue;
    }
    const next = nextAttemptAt(options.schedule, c.attempts, at, options.random);
    if (next) {
      updates.push({ c, status: "pending", next, code: result.statusCode });
      outcomes.set(c.m, { kind: "retry", nextAttemptAt: next, statusCode: result.statusCode, errorCode });
    } else {
      updates.push({ c, status: "failed", next: at, code: result.statusCode });
      exhausted.push(s);
      outcomes.set(c.m, { kind: "failed", statusCode: result.statusCode, errorCode, disabled: null });
    }
  }
  // Only while the delivery still holds this attempt's count: a later attempt of it (a re-send claimed while
  // this one waited for its receiver) owns its state now, and an older failure must not turn that attempt's
  // recorded 2xx back into a pending retry (a repeat after the receiver said yes). The attempt row above
  // stays: it happened.
  const { rows: applied } = await sql<{ message_id: string; endpoint_id: string }>`
    update webhook_deliveries d
    set status = v.status, next_attempt_at = v.next, last_status_code = v.code
    from (values ${sql.join(
      updates.map(
        (u) =>
          sql`(${u.c.m.messageId}::text, ${u.c.m.endpointId}::text, ${u.c.attempts}::int, ${u.status}::text, ${u.next}::timestamptz, ${u.code}::int)`,
      ),
    )}) as v(m, e, a, status, next, code)
    where d.message_id = v.m and d.endpoint_id = v.e and d.attempts = v.a
    returning d.message_id, d.endpoint_id
  `.execute(tx);
  const owned = new Set(applied.map((r) => keyOf({ messageId: r.message_id, endpointId: r.endpoint_id })));
  for (const { c } of updates) {
    if (!owned.has(keyOf(c.m))) outcomes.set(c.m, { kind: "stale" });
  }

  // The endpoint's failure streak: any success in this batch ends it (the endpoint is reachable); else it
  // starts at the earliest failure, unless it had started already.
  const streak = new Map<string, Date | null>();
  for (const { c, result, at } of sent) {
    const before = streak.get(c.m.endpointId);
    if (succeeded(result)) streak.set(c.m.endpointId, null);
    else if (before !== null) streak.set(c.m.endpointId, before && before < at ? before : at);
  }
  const healthy = [...streak].filter(([, at]) => at === null).map(([id]) => id);
  if (healthy.length > 0) {
    await tx
      .updateTable("webhook_endpoints")
      .set({ failing_since: null })
      .where("id", "in", healthy)
      .where("failing_since", "is not", null)
      .execute();
  }
  for (const [endpointId, at] of streak) {
    if (at === null) continue;
    await tx
      .updateTable("webhook_endpoints")
      .set({ failing_since: sql<Date>`coalesce(failing_since, ${at}::timestamptz)` })
      .where("id", "=", endpointId)
      .execute();
  }

  for (const endpointId of gone) {
    const disabled = await disableEndpoint(tx, orgId, endpointId, "gone", options.now());
    if (!disabled) continue;
    for (const [m, o] of outcomes) {
      if (m.endpointId === endpointId && o.kind === "failed" && o.statusCode === 410) o.disabled = "gone";
    }
  }
  // Sustained failure: a delivery failed its whole schedule and nothing has reached the endpoint since
  // its first attempt (the streak began at or before it).
  for (const { c, at } of exhausted) {
    if (!owned.has(keyOf(c.m))) continue;
    const row = await tx
      .selectFrom("webhook_endpoints")
      .select("failing_since")
      .where("id", "=", c.m.endpointId)
      .executeTakeFirst();
    const first = await tx
      .selectFrom("webhook_attempts")
      .select((eb) => eb.fn.min("attempted_at").as("at"))
      .where("message_id", "=", c.m.messageId)
      .where("endpoint_id", "=", c.m.endpointId)
      .executeTakeFirst();
    const firstAt = first?.at ? new Date(first.at) : at;
    if (!row?.failing_since || row.failing_since.getTime() > firstAt.getTime()) continue;
    if (await disableEndpoint(tx, orgId, c.m.endpointId, "failing", at)) {
      const o = outcomes.get(c.m);
      if (o?.kind === "failed") o.disabled = "failing";
    }
  }
  return outcomes;
}

/**
 * One attempt at each delivery the Queue messages name; an outcome per message, in order. Throws only for
 * our side (database, keyring) — for the org whose transaction failed; the caller retries those messages.
 */
export async function deliverWebhooks(
  db: Db,
  messages: WebhookQueueMessage[],
  options: DeliverOptions,
): Promise<PromiseSettledResult<DeliverOutcome>[]> {
  const byOrg = new Map<string, WebhookQueueMessage[]>();
  for (const m of messages) byOrg.set(m.orgId, [...(byOrg.get(m.orgId) ?? []), m]);
  const inTurn = turns(options.concurrentSends);
  const perOrg = new Map<string, Promise<Map<WebhookQueueMessage, DeliverOutcome>>>();
  for (const [orgId, group] of byOrg) {
    perOrg.set(
      orgId,
      (async () => {
        const { outcomes, claimed } = await withTenant(db, orgId, (tx) =>
          claim(tx, group, options, options.now()),
        );
        if (claimed.length === 0) return outcomes;
        const sent = await Promise.all(
          claimed.map(
            (c): Promise<Sent> =>
              inTurn(async () => {
                const at = options.now();
                const result = await sendWebhook({
                  url: c.url,
                  secrets: c.secrets,
                  messageId: c.m.messageId,
                  timestamp: at,
                  body: c.body,
                  timeoutMs: options.timeoutMs,
                  allowLocalHttp: options.allowLocalHttp,
                  ...(options.fetch ? { fetch: options.fetch } : {}),
                });
                return { c, result, at };
              }),
          ),
        );
        const recorded = await withTenant(db, orgId, (tx) => record(tx, orgId, sent, options));
        for (const [m, o] of recorded) outcomes.set(m, o);
        return outcomes;
      })(),
    );
  }
  return Promise.allSettled(
    messages.map(async (m) => {
      const outcome = (await perOrg.get(m.orgId))?.get(m);
      if (!outcome) throw new Error("no outcome for a webhook message");
      return outcome;
    }),
  );
}

/** Runs the tasks given to it at most `limit` at a time, in the order given. */
function turns(limit: number): <T>(task: () => Promise<T>) => Promise<T> {
  let running = 0;
  const waiting: (() => void)[] = [];
  return async (task) => {
    if (running >= limit) await new Promise<void>((resolve) => waiting.push(resolve));
    else running++;
    try {
      return await task();
    } finally {
      const next = waiting.shift();
      if (next) next();
      else running--;
    }
  };
}

/** One attempt at one delivery (deliverWebhooks for a single message). */
export async function deliverWebhook(
  db: Db,
  m: WebhookQueueMessage,
  options: DeliverOptions,
): Promise<DeliverOutcome> {
  const [result] = await deliverWebhooks(db, [m], options);
  if (!result) throw new Error("no outcome");
  if (result.status === "rejected") throw result.reason;
  return result.value;
}
