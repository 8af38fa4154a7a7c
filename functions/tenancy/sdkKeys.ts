import { type Db, withTenant } from "../../shared/db";
import { sha256Hex } from "../../shared/hash";
import { displayPrefix, newId, newSecret } from "../../shared/ids";

/** Publishable ingest keys start with this; they can only send events to one project. */
export const SDK_KEY_PREFIX = "lp_pk_";

export interface CreatedSdkKey {
  id: string;
  projectId: string;
  /** Shown once, here. Only its SHA-256 is stored. */
  secret: string;
  displayPrefix: string;
}

export async function createSdkKey(
  db: Db,
  orgId: string,
  projectId: string,
  options: { secret?: string } = {},
): Promise<CreatedSdkKey> {
  const secret = options.secret ?? newSecret(SDK_KEY_PREFIX);
  const id = newId("sdkkey");
  const prefix = displayPrefix(secret, SDK_KEY_PREFIX.length);
  const keySha256 = await sha256Hex(secret);
  await withTenant(db, orgId, (tx) =>
    tx
      .insertInto("sdk_keys")
      .values({ id, org_id: orgId, project_id: projectId, key_sha256: keySha256, display_prefix: prefix })
      .execute(),
  );
  return { id, projectId, secret, displayPrefix: prefix };
}

/** Revokes a key of this org; returns false when there is no such live key. */
export async function revokeSdkKey(db: Db, orgId: string, keyId: string, now: Date): Promise<boolean> {
  const result = await withTenant(db, orgId, (tx) =>
    tx
      .updateTable("sdk_keys")
      .set({ revoked_at: now })
      .where("id", "=", keyId)
      .where("revoked_at", "is", null)
      .executeTakeFirst(),
  );
  return result.numUpdatedRows > 0n;
}
