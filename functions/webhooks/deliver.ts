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

// The webhooks Worker's work for one Queue message: one attempt at one delivery, in three steps, no
// transaction held while the receiver answers.
//   1. claim (tenant transaction, the org's RLS): the delivery is still pending with the attempt count the
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
  allowLocalHttp: boolean;
  now: () => Date;
  random?: () => number;
  fetch?: Fetch;
}

export type DeliverOutcome =
  /** Nothing to do: already attempted under this count, finished, or gone (a duplicate Queue message). */
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

interface Claimed {
  url: string;
  secrets: string[];
  attempts: number;
  eventType: string;
  payload: unknown;
  createdAt: Date;
}

async function claim(
  tx: Tx,
  m: WebhookQueueMessage,
  options: DeliverOptions,
  now: Date,
): Promise<Claimed | "stale" | "endpoint_off"> {
  const row = await tx
    .selectFrom("webhook_deliveries as d")
    .innerJoin("webhook_endpoints as e", "e.id", "d.endpoint_id")
    .innerJoin("webhook_messages as msg", "msg.id", "d.message_id")
    .select([
      "d.status",
      "d.attempts",
      "e.id",
      "e.org_id",
      "e.url",
      "e.enabled",
      "e.deleted_at",
      "e.secret_ciphertext",
      "e.secret_key_id",
      "e.previous_secret_ciphertext",
      "e.previous_secret_key_id",
      "e.previous_secret_expires_at",
      "msg.event_type",
      "msg.payload",
      "msg.created_at",
    ])
    .where("d.message_id", "=", m.messageId)
    .where("d.endpoint_id", "=", m.endpointId)
    .executeTakeFirst();
  if (!row || row.status !== "pending" || row.attempts !== m.attempts) return "stale";
  const key = (q: typeof tx) =>
    q
      .updateTable("webhook_deliveries")
      .where("message_id", "=", m.messageId)
      .where("endpoint_id", "=", m.endpointId)
      .where("status", "=", "pending")
      .where("attempts", "=", m.attempts);
  if (!row.enabled || row.deleted_at !== null) {
    await key(tx).set({ status: "failed" }).execute();
    return "endpoint_off";
  }
  // Decrypted before the claim: a keyring missing the key fails the transaction, and the Queue retries
  // the message without an attempt having been counted.
  const secrets = await signingSecrets(options.keyring, row, now);
  const claimed = await key(tx)
    .set({
      attempts: sql<number>`attempts + 1`,
      last_attempt_at: now,
      next_attempt_at: new Date(now.getTime() + options.leaseSeconds * 1000),
    })
    .returning("attempts")
    .executeTakeFirst();
  if (!claimed) return "stale";
  return {
    url: row.url,
    secrets,
    attempts: claimed.attempts,
    eventType: row.event_type,
    payload: row.payload,
    createdAt: row.created_at,
  };
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

async function record(
  tx: Tx,
  m: WebhookQueueMessage,
  claimed: Claimed,
  result: SendWebhookResult,
  options: DeliverOptions,
  at: Date,
): Promise<DeliverOutcome> {
  await tx
    .insertInto("webhook_attempts")
    .values({
      id: newId("wha"),
      org_id: m.orgId,
      endpoint_id: m.endpointId,
      message_id: m.messageId,
      attempted_at: at,
      duration_ms: Math.max(0, Math.round(result.durationMs)),
      status_code: result.statusCode,
      error_code: result.errorCode,
      response_excerpt: result.responseExcerpt,
    })
    .execute();
  const delivery = tx
    .updateTable("webhook_deliveries")
    .where("message_id", "=", m.messageId)
    .where("endpoint_id", "=", m.endpointId);

  if (result.errorCode === null && result.statusCode !== null) {
    await delivery.set({ status: "succeeded", last_status_code: result.statusCode }).execute();
    await tx
      .updateTable("webhook_endpoints")
      .set({ failing_since: null })
      .where("id", "=", m.endpointId)
      .where("failing_since", "is not", null)
      .execute();
    return { kind: "succeeded", statusCode: result.statusCode };
  }

  const errorCode = result.errorCode ?? "http_status";
  // The streak of failures starts at the first one; a success (above) ends it.
  const endpoint = await tx
    .updateTable("webhook_endpoints")
    .set({ failing_since: sql<Date>`coalesce(failing_since, ${at}::timestamptz)` })
    .where("id", "=", m.endpointId)
    .returning(["failing_since"])
    .executeTakeFirstOrThrow();

  if (result.statusCode === 410) {
    await delivery.set({ status: "failed", last_status_code: 410 }).execute();
    const disabled = await disableEndpoint(tx, m.orgId, m.endpointId, "gone", at);
    return { kind: "failed", statusCode: 410, errorCode, disabled: disabled ? "gone" : null };
  }

  const next = nextAttemptAt(options.schedule, claimed.attempts, at, options.random);
  if (next) {
    await delivery.set({ next_attempt_at: next, last_status_code: result.statusCode }).execute();
    return { kind: "retry", nextAttemptAt: next, statusCode: result.statusCode, errorCode };
  }
  await delivery.set({ status: "failed", last_status_code: result.statusCode }).execute();
  // Sustained failure: this delivery failed its whole schedule and nothing has reached the endpoint since
  // its first attempt (the streak began at or before it).
  const first = await tx
    .selectFrom("webhook_attempts")
    .select((eb) => eb.fn.min("attempted_at").as("at"))
    .where("message_id", "=", m.messageId)
    .where("endpoint_id", "=", m.endpointId)
    .executeTakeFirst();
  const firstAt = first?.at ? new Date(first.at) : at;
  const sustained = endpoint.failing_since !== null && endpoint.failing_since.getTime() <= firstAt.getTime();
  const disabled = sustained && (await disableEndpoint(tx, m.orgId, m.endpointId, "failing", at));
  return { kind: "failed", statusCode: result.statusCode, errorCode, disabled: disabled ? "failing" : null };
}

/** One attempt at the delivery a Queue message names. Throws only for our side (database, keyring). */
export async function deliverWebhook(
  db: Db,
  m: WebhookQueueMessage,
  options: DeliverOptions,
): Promise<DeliverOutcome> {
  const claimedAt = options.now();
  const claimed = await withTenant(db, m.orgId, (tx) => claim(tx, m, options, claimedAt));
  if (claimed === "stale") return { kind: "stale" };
  if (claimed === "endpoint_off") return { kind: "endpoint_off" };
  const at = options.now();
  const result = await sendWebhook({
    url: claimed.url,
    secrets: claimed.secrets,
    messageId: m.messageId,
    timestamp: at,
    body: webhookBody({
      eventType: claimed.eventType,
      createdAt: claimed.createdAt,
      payload: claimed.payload,
    }),
    timeoutMs: options.timeoutMs,
    allowLocalHttp: options.allowLocalHttp,
    ...(options.fetch ? { fetch: options.fetch } : {}),
  });
  return withTenant(db, m.orgId, (tx) => record(tx, m, claimed, result, options, at));
}
