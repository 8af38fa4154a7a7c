import type { Db, Tx } from "../../shared/db";
import { withTenant } from "../../shared/db";
import { withoutSecrets } from "../../shared/secretFields";

/** How long a key and its replay envelope are kept (the data-protection page promises 24 h). */
export const IDEMPOTENCY_TTL_MS = 24 * 3_600_000;
export const MAX_IDEMPOTENCY_KEY_LENGTH = 255;

/**
 * Whose key it is: the org and the API key that sent it. Another key of the same org never sees the record,
 * so it can neither replay an answer it was not authorised to get nor block the key's owner.
 */
export interface IdempotencyScope {
  orgId: string;
  apiKeyId: string;
  key: string;
}

export type Claim =
  | { kind: "claimed" }
  | { kind: "replay"; status: number; body: unknown }
  | { kind: "reused" }
  | { kind: "in_use" };

/**
 * Claims an Idempotency-Key for one request, in its own committed transaction so concurrent requests see
 * the claim at once. Insert-or-nothing on (org, API key, key) is the lock: exactly one request wins; the
 * others learn whether to replay (same request, finished), wait (same request, in flight) or fail (another
 * request: a different method, path, query string or body).
 */
export async function claimIdempotencyKey(
  db: Db,
  scope: IdempotencyScope,
  requestSha256: string,
  now: Date,
): Promise<Claim> {
  // The same claim as a change's own (below), committed at once instead of with the change.
  return withTenant(db, scope.orgId, (tx) => claimIdempotencyKeyInTransaction(tx, scope, requestSha256, now));
}

/**
 * Claims an Idempotency-Key inside the change's own transaction (a `mutation`): the claim, the change, its
 * audit rows and the replay envelope then commit together, and a rollback (a 4xx or 5xx thrown by the
 * change) takes the claim with it, so there is nothing to release. Saves the separate claim transaction's
 * round trips and commit. Concurrency: the insert's unique entry is the lock. A request with the same key
 * arriving meanwhile waits in its own insert until this transaction ends, then replays what committed
 * (or, after a rollback, claims the key itself): it never runs the change a second time.
 */
export async function claimIdempotencyKeyInTransaction(
  tx: Tx,
  scope: IdempotencyScope,
  requestSha256: string,
  now: Date,
): Promise<Claim> {
  // A second attempt follows the removal of a record older than the TTL, or one gone meanwhile.
  for (let attempt = 0; attempt < 3; attempt++) {
    const inserted = await tx
      .insertInto("idempotency_keys")
      .values({
        org_id: scope.orgId,
        api_key_id: scope.apiKeyId,
        idempotency_key: scope.key,
        request_sha256: requestSha256,
        state: "in_progress",
        created_at: now,
      })
      .onConflict((oc) => oc.columns(["org_id", "api_key_id", "idempotency_key"]).doNothing())
      .returning("idempotency_key")
      .executeTakeFirst();
    if (inserted) return { kind: "claimed" };
    const existing = await tx
      .selectFrom("idempotency_keys")
      .select(["request_sha256", "state", "response_status", "response_body", "created_at"])
      .where("api_key_id", "=", scope.apiKeyId)
      .where("idempotency_key", "=", scope.key)
      .executeTakeFirst();
    const expired = existing && existing.created_at.getTime() <= now.getTime() - IDEMPOTENCY_TTL_MS;
    if (!existing || (expired && attempt === 0)) {
      // Gone meanwhile, or older than the TTL, where it no longer binds the key (the Cron purge removes
      // such records later): claim again.
      if (expired) await deleteExpired(tx, scope, now);
      continue;
    }
    if (existing.request_sha256 !== requestSha256) return { kind: "reused" };
    if (existing.state === "in_progress") return { kind: "in_use" };
    return { kind: "replay", status: existing.response_status ?? 200, body: existing.response_body };
  }
  // Only a key claimed and released over and over by other requests in these few milliseconds gets here.
  return { kind: "in_use" };
}

/**
 * Stores a 4xx answer for a key whose change rolled back (claimIdempotencyKeyInTransaction's claim went
 * with it), in its own transaction: the same request then gets the same answer. A record written meanwhile
 * by a request with the same key wins (nothing is overwritten).
 */
export async function storeIdempotentAnswer(
  tx: Tx,
  scope: IdempotencyScope,
  requestSha256: string,
  response: { status: number; body: unknown },
  now: Date,
): Promise<void> {
  await deleteExpired(tx, scope, now);
  await tx
    .insertInto("idempotency_keys")
    .values({
      org_id: scope.orgId,
      api_key_id: scope.apiKeyId,
      idempotency_key: scope.key,
      request_sha256: requestSha256,
      state: "completed",
      created_at: now,
      response_status: response.status,
      response_body: response.body === null ? null : JSON.stringify(withoutSecrets(response.body, "null")),
      completed_at: now,
    })
    .onConflict((oc) => oc.columns(["org_id", "api_key_id", "idempotency_key"]).doNothing())
    .execute();
}

async function deleteExpired(tx: Tx, scope: IdempotencyScope, now: Date): Promise<void> {
  await tx
    .deleteFrom("idempotency_keys")
    .where("api_key_id", "=", scope.apiKeyId)
    .where("idempotency_key", "=", scope.key)
    .where("created_at", "<=", new Date(now.getTime() - IDEMPOTENCY_TTL_MS))
    .execute();
}

/**
 * Stores the replay envelope. Called inside the request's own transaction, so it commits with the change.
 * Secrets in the answer (a new key's secret) are stored as null: a secret is shown once and never kept, so
 * a replay returns the resource with `secret: null` instead of handing the secret out a second time.
 */
export async function completeIdempotencyKey(
  tx: Tx,
  scope: IdempotencyScope,
  response: { status: number; body: unknown },
  now: Date,
): Promise<void> {
  await tx
    .updateTable("idempotency_keys")
    .set({
      state: "completed",
      response_status: response.status,
      // JSON text as the client received it (json, not jsonb: key order is kept for a byte-identical replay).
      response_body: response.body === null ? null : JSON.stringify(withoutSecrets(response.body, "null")),
      completed_at: now,
    })
    .where("api_key_id", "=", scope.apiKeyId)
    .where("idempotency_key", "=", scope.key)
    .execute();
}

/** Gives the key back after a failure on our side (5xx), so the client can retry with it. */
export async function releaseIdempotencyKey(db: Db, scope: IdempotencyScope): Promise<void> {
  await withTenant(db, scope.orgId, (tx) =>
    tx
      .deleteFrom("idempotency_keys")
      .where("api_key_id", "=", scope.apiKeyId)
      .where("idempotency_key", "=", scope.key)
      .where("state", "=", "in_progress")
      .execute(),
  );
}
