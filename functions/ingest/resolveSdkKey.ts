import { sql } from "kysely";
import type { Db } from "../../shared/db";
import { hasSecretShape } from "../../shared/ids";
import { SDK_KEY_PREFIX } from "../sdkKeys/store";

export interface SdkKeyIdentity {
  keyId: string;
  orgId: string;
  projectId: string;
  eventRetentionDays: number;
  archived: boolean;
}

/**
 * Whether the secret has the exact shape of an SDK key (`lp_pk_` + 32 letters or digits). Anything else is
 * refused before any lookup or rate-limit call: it cannot be a key.
 */
export function isSdkKeyShaped(secret: string): boolean {
  return hasSecretShape(secret, SDK_KEY_PREFIX);
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
