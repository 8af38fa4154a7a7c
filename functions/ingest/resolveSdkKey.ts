import { sql } from "kysely";
import type { Db } from "../../shared/db";

export interface SdkKeyIdentity {
  keyId: string;
  orgId: string;
  projectId: string;
  eventRetentionDays: number;
  archived: boolean;
}

/**
 * Looks up a live (not revoked) SDK key by the SHA-256 of the presented secret. Runs before the org is
 * known, so it goes through the one definer function schema.sql exposes for this, not the tenant tables.
 */
export async function resolveSdkKey(db: Db, keySha256: string): Promise<SdkKeyIdentity | null> {
  // In a transaction like every other query: the embedded dev database serializes per transaction only.
  const { rows } = await db.transaction().execute((tx) =>
    sql<{
      key_id: string;
      org_id: string;
      project_id: string;
      event_retention_days: number;
      archived: boolean;
    }>`select * from resolve_sdk_key(${keySha256})`.execute(tx),
  );
  const row = rows[0];
  if (!row) return null;
  return {
    keyId: row.key_id,
    orgId: row.org_id,
    projectId: row.project_id,
    eventRetentionDays: row.event_retention_days,
    archived: row.archived,
  };
}

/**
 * A small per-isolate cache of positive lookups, so a busy SDK key costs a database round trip about
 * once a minute per isolate instead of once per request. Unknown keys are not cached: a key created a
 * second ago works at once. The price: a revoked key keeps working for up to `ttlMs` on warm isolates
 * (documented in the README).
 */
export class SdkKeyCache {
  readonly #entries = new Map<string, { identity: SdkKeyIdentity; expiresAt: number }>();

  constructor(
    private readonly ttlMs: number,
    private readonly maxEntries = 10_000,
  ) {}

  async get(
    keySha256: string,
    now: number,
    load: () => Promise<SdkKeyIdentity | null>,
  ): Promise<SdkKeyIdentity | null> {
    const hit = this.#entries.get(keySha256);
    if (hit && hit.expiresAt > now) return hit.identity;
    const identity = await load();
    if (identity && this.ttlMs > 0) {
      if (this.#entries.size >= this.maxEntries) this.#entries.clear();
      this.#entries.set(keySha256, { identity, expiresAt: now + this.ttlMs });
    } else {
      this.#entries.delete(keySha256);
    }
    return identity;
  }
}
