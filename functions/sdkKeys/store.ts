import type { Db } from "../../shared/db";
import { newestFirstPage } from "../../shared/db/newestFirstPage";
import { sha256Hex } from "../../shared/hash";
import { displayPrefix, newId, newSecret } from "../../shared/ids";

/** Publishable ingest keys start with this; they can only send events to one project. */
export const SDK_KEY_PREFIX = "lp_pk_";

export interface SdkKey {
  id: string;
  projectId: string;
  displayPrefix: string;
  createdAt: Date;
  revokedAt: Date | null;
}

export interface CreatedSdkKey extends SdkKey {
  /** Shown once, here. Only its SHA-256 is stored. */
  secret: string;
}

/** Creates an SDK key for a project of the org the transaction is scoped to. */
export async function createSdkKey(
  db: Db,
  orgId: string,
  projectId: string,
  options: { secret?: string } = {},
): Promise<CreatedSdkKey> {
  const secret = options.secret ?? newSecret(SDK_KEY_PREFIX);
  const row = await db
    .insertInto("sdk_keys")
    .values({
      id: newId("sdkkey"),
      org_id: orgId,
      project_id: projectId,
      key_sha256: await sha256Hex(secret),
      display_prefix: displayPrefix(secret, SDK_KEY_PREFIX.length),
    })
    .returning(["id", "project_id", "display_prefix", "created_at", "revoked_at"])
    .executeTakeFirstOrThrow();
  return { ...toSdkKey(row), secret };
}

export function toSdkKey(row: {
  id: string;
  project_id: string;
  display_prefix: string;
  created_at: Date;
  revoked_at: Date | null;
}): SdkKey {
  return {
    id: row.id,
    projectId: row.project_id,
    displayPrefix: row.display_prefix,
    createdAt: row.created_at,
    revokedAt: row.revoked_at,
  };
}

/** Revokes a live key; returns false when this org has no such live key. */
export async function revokeSdkKey(db: Db, keyId: string, now: Date): Promise<boolean> {
  const result = await db
    .updateTable("sdk_keys")
    .set({ revoked_at: now })
    .where("id", "=", keyId)
    .where("revoked_at", "is", null)
    .executeTakeFirst();
  return result.numUpdatedRows > 0n;
}

export async function listSdkKeys(
  db: Db,
  projectId: string,
  page: { limit: number; startingAfter?: string | undefined },
): Promise<{ data: SdkKey[]; hasMore: boolean }> {
  const { rows, hasMore } = await newestFirstPage(
    db
      .selectFrom("sdk_keys")
      .select(["id", "project_id", "display_prefix", "created_at", "revoked_at"])
      .where("project_id", "=", projectId),
    { table: "sdk_keys", time: "created_at", id: "id", ...page },
  );
  return { data: rows.map(toSdkKey), hasMore };
}

export async function getSdkKey(db: Db, projectId: string, keyId: string): Promise<SdkKey | null> {
  const row = await db
    .selectFrom("sdk_keys")
    .select(["id", "project_id", "display_prefix", "created_at", "revoked_at"])
    .where("id", "=", keyId)
    .where("project_id", "=", projectId)
    .executeTakeFirst();
  return row ? toSdkKey(row) : null;
}
