import type { Db } from "../../shared/db";
import { withTenant } from "../../shared/db";

/** How long a key and its replay envelope are kept (the seeds promise 24 h). */
export const IDEMPOTENCY_TTL_MS = 24 * 3_600_000;
export const MAX_IDEMPOTENCY_KEY_LENGTH = 255;

export type Claim =
  | { kind: "claimed" }
  | { kind: "replay"; status: number; body: unknown }
  | { kind: "reused" }
  | { kind: "in_use" };

/**
 * Claims an Idempotency-Key for one request, in its own committed transaction so concurrent requests see
 * the claim at once. Insert-or-nothing on (org, key) is the lock: exactly one request wins; the others
 * learn whether to replay (same request, finished), wait (same request, in flight) or fail (other request).
 */
export async function claimIdempotencyKey(
  db: Db,
  orgId: string,
  key: string,
  requestSha256: string,
  now: Date,
): Promise<Claim> {
  return withTenant(db, orgId, async (tx) => {
    // A record older than the TTL no longer binds the key (the Cron purge removes it later).
    await tx
      .deleteFrom("idempotency_keys")
      .where("idempotency_key", "=", key)
      .where("created_at", "<=", new Date(now.getTime() - IDEMPOTENCY_TTL_MS))
      .execute();
    const inserted = await tx
      .insertInto("idempotency_keys")
      .values({
        org_id: orgId,
        idempotency_key: key,
        request_sha256: requestSha256,
        state: "in_progress",
        created_at: now,
      })
      .onConflict((oc) => oc.columns(["org_id", "idempotency_key"]).doNothing())
      .returning("idempotency_key")
      .executeTakeFirst();
    if (inserted) return { kind: "claimed" };
    const existing = await tx
      .selectFrom("idempotency_keys")
      .select(["request_sha256", "state", "response_status", "response_body"])
      .where("idempotency_key", "=", key)
      .executeTakeFirstOrThrow();
    if (existing.request_sha256 !== requestSha256) return { kind: "reused" };
    if (existing.state === "in_progress") return { kind: "in_use" };
    return { kind: "replay", status: existing.response_status ?? 200, body: existing.response_body };
  });
}

/** Stores the replay envelope. Called inside the request's own transaction, so it commits with the change. */
export async function completeIdempotencyKey(
  tx: Db,
  key: string,
  response: { status: number; body: unknown },
  now: Date,
): Promise<void> {
  await tx
    .updateTable("idempotency_keys")
    .set({
      state: "completed",
      response_status: response.status,
      response_body: JSON.stringify(response.body),
      completed_at: now,
    })
    .where("idempotency_key", "=", key)
    .execute();
}

/** Gives the key back after a failure on our side (5xx), so the client can retry with it. */
export async function releaseIdempotencyKey(db: Db, orgId: string, key: string): Promise<void> {
  await withTenant(db, orgId, (tx) =>
    tx
      .deleteFrom("idempotency_keys")
      .where("idempotency_key", "=", key)
      .where("state", "=", "in_progress")
      .execute(),
  );
}
