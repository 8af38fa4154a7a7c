import { type Selectable, sql } from "kysely";
import type { Db } from "../../shared/db";
import { newestFirstPage } from "../../shared/db/newestFirstPage";
import type { StorageConfigs } from "../../shared/db/types";
import type { Keyring } from "../../shared/destinations";
import { newId } from "../../shared/ids";
import { openStorageSecret, sealStorageSecret } from "../content/storageSecret";

// A partner's own S3-compatible bucket ("own" content storage), org-wide. The secret access key leaves
// this file in two forms only: decrypted inside a StorageTarget (the check's probe, in memory), or as its
// last four characters in a StorageConfigView (everything an answer or an audit row may show).

/** What a partner sends, already validated and normalised by the route and the verb. */
export interface StorageConfigInput {
  name: string;
  endpoint: string;
  region: string;
  bucket: string;
  prefix: string;
  forcePathStyle: boolean;
  accessKeyId: string;
  secretAccessKey: string;
}

/** A config as the API shows it: never the secret, only its last four characters. */
export interface StorageConfigView {
  id: string;
  name: string;
  endpoint: string;
  region: string;
  bucket: string;
  prefix: string;
  forcePathStyle: boolean;
  accessKeyId: string;
  secretLast4: string;
  checkedAt: Date | null;
  checkStatus: "ok" | "failed" | null;
  createdAt: Date;
  updatedAt: Date;
}

/** Where and how to reach the partner's bucket, secret decrypted (in memory, for one call). */
export interface StorageTarget {
  id: string;
  endpoint: string;
  region: string;
  bucket: string;
  prefix: string;
  forcePathStyle: boolean;
  accessKeyId: string;
  secretAccessKey: string;
}

const VIEW_COLUMNS = [
  "id",
  "name",
  "endpoint",
  "region",
  "bucket",
  "prefix",
  "force_path_style",
  "access_key_id",
  "secret_last4",
  "checked_at",
  "check_status",
  "created_at",
  "updated_at",
] as const;

type ViewRow = Pick<Selectable<StorageConfigs>, (typeof VIEW_COLUMNS)[number]>;

function toView(row: ViewRow): StorageConfigView {
  return {
    id: row.id,
    name: row.name,
    endpoint: row.endpoint,
    region: row.region,
    bucket: row.bucket,
    prefix: row.prefix,
    forcePathStyle: row.force_path_style,
    accessKeyId: row.access_key_id,
    secretLast4: row.secret_last4,
    checkedAt: row.checked_at,
    checkStatus: row.check_status,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

/**
 * Serialises creates within one org (a transaction-scoped advisory lock), so the per-org limit holds even
 * when two creates race: the second waits, then counts the first.
 */
export async function lockOrgStorageConfigs(db: Db, orgId: string): Promise<void> {
  await sql`select pg_advisory_xact_lock(hashtextextended(${`storage_configs:${orgId}`}, 0))`.execute(db);
}

export async function countStorageConfigs(db: Db): Promise<number> {
  const { count } = await db
    .selectFrom("storage_configs")
    .select((eb) => eb.fn.countAll<string>().as("count"))
    .executeTakeFirstOrThrow();
  return Number(count);
}

/** Stores a new config, its secret sealed under the current key and bound to the org and the new id. */
export async function insertStorageConfig(
  db: Db,
  orgId: string,
  input: StorageConfigInput,
  keyring: Keyring,
  now: Date,
): Promise<StorageConfigView> {
  const id = newId("stcfg");
  const sealed = await sealStorageSecret(keyring, input.secretAccessKey, { orgId, storageConfigId: id });
  const row = await db
    .insertInto("storage_configs")
    .values({
      id,
      org_id: orgId,
      name: input.name,
      endpoint: input.endpoint,
      region: input.region,
      bucket: input.bucket,
      prefix: input.prefix,
      force_path_style: input.forcePathStyle,
      access_key_id: input.accessKeyId,
      secret_ciphertext: sealed.ciphertext,
      secret_key_id: sealed.keyId,
      secret_last4: sealed.last4,
      created_at: now,
      updated_at: now,
    })
    .returning(VIEW_COLUMNS)
    .executeTakeFirstOrThrow();
  return toView(row);
}

export async function getStorageConfig(db: Db, id: string): Promise<StorageConfigView | null> {
  const row = await db
    .selectFrom("storage_configs")
    .select(VIEW_COLUMNS)
    .where("id", "=", id)
    .executeTakeFirst();
  return row ? toView(row) : null;
}

export async function listStorageConfigs(
  db: Db,
  page: { limit: number; startingAfter?: string | undefined },
): Promise<{ data: StorageConfigView[]; hasMore: boolean }> {
  const { rows, hasMore } = await newestFirstPage(db.selectFrom("storage_configs").select(VIEW_COLUMNS), {
    table: "storage_configs",
    time: "created_at",
    id: "id",
    ...page,
  });
  return { data: rows.map(toView), hasMore };
}

/**
 * The config, secret decrypted (TokenDecryptError when its key has left the ring), or null. The secret
 * exists only in the returned object.
 */
export async function loadStorageTarget(
  db: Db,
  orgId: string,
  id: string,
  keyring: Keyring,
): Promise<StorageTarget | null> {
  const row = await db
    .selectFrom("storage_configs")
    .select([
      "id",
      "endpoint",
      "region",
      "bucket",
      "prefix",
      "force_path_style",
      "access_key_id",
      "secret_ciphertext",
      "secret_key_id",
    ])
    .where("id", "=", id)
    .executeTakeFirst();
  if (!row) return null;
  const secretAccessKey = await openStorageSecret(
    keyring,
    { ciphertext: row.secret_ciphertext, keyId: row.secret_key_id },
    { orgId, storageConfigId: row.id },
  );
  return {
    id: row.id,
    endpoint: row.endpoint,
    region: row.region,
    bucket: row.bucket,
    prefix: row.prefix,
    forcePathStyle: row.force_path_style,
    accessKeyId: row.access_key_id,
    secretAccessKey,
  };
}

/**
 * Locks the config's row (for update) and says whether it exists: a delete holds the lock until it commits,
 * so a job being created against the config (which should lock the row for share) waits for it, and
 * the open-jobs count that follows cannot miss a job committed in between.
 */
export async function lockStorageConfig(db: Db, id: string): Promise<StorageConfigView | null> {
  const row = await db
    .selectFrom("storage_configs")
    .select(VIEW_COLUMNS)
    .where("id", "=", id)
    .forUpdate()
    .executeTakeFirst();
  return row ? toView(row) : null;
}

/** Content jobs not yet finished (queued or running) that write to this config's bucket. */
export async function countOpenJobsUsing(db: Db, id: string): Promise<number> {
  const { count } = await db
    .selectFrom("content_jobs")
    .select((eb) => eb.fn.countAll<string>().as("count"))
    .where("storage_config_id", "=", id)
    .where("status", "in", ["queued", "running"])
    .executeTakeFirstOrThrow();
  return Number(count);
}

export async function deleteStorageConfig(db: Db, id: string): Promise<void> {
  await db.deleteFrom("storage_configs").where("id", "=", id).execute();
}

/** The last check's result. Not a configuration change: `updated_at` is left alone. */
export async function setCheckResult(
  db: Db,
  id: string,
  status: "ok" | "failed",
  at: Date,
): Promise<StorageConfigView | null> {
  const row = await db
    .updateTable("storage_configs")
    .set({ check_status: status, checked_at: at })
    .where("id", "=", id)
    .returning(VIEW_COLUMNS)
    .executeTakeFirst();
  return row ? toView(row) : null;
}

/**
 * Key rotation (scripts/reencrypt-destination-tokens.ts): every config whose secret an older key sealed is
 * opened and sealed again under the current key, bound to the same org and config. Rows already under the
 * current key are not touched, so a second run moves nothing. Runs in the caller's transaction, rows locked.
 */
export async function reencryptStorageSecrets(
  db: Db,
  keyring: Keyring,
  options: { orgId?: string | undefined } = {},
): Promise<number> {
  let query = db
    .selectFrom("storage_configs")
    .select(["id", "org_id", "secret_ciphertext", "secret_key_id"])
    .where("secret_key_id", "!=", keyring.currentKeyId);
  if (options.orgId) query = query.where("org_id", "=", options.orgId);
  const stale = await query.forUpdate().execute();
  for (const row of stale) {
    const binding = { orgId: row.org_id, storageConfigId: row.id };
    const secret = await openStorageSecret(
      keyring,
      { ciphertext: row.secret_ciphertext, keyId: row.secret_key_id },
      binding,
    );
    const sealed = await sealStorageSecret(keyring, secret, binding);
    await db
      .updateTable("storage_configs")
      .set({ secret_ciphertext: sealed.ciphertext, secret_key_id: sealed.keyId })
      .where("id", "=", row.id)
      .execute();
  }
  return stale.length;
}

export async function countStaleStorageSecrets(
  db: Db,
  currentKeyId: string,
  options: { orgId?: string | undefined } = {},
): Promise<number> {
  let query = db
    .selectFrom("storage_configs")
    .select((eb) => eb.fn.countAll<string>().as("count"))
    .where("secret_key_id", "!=", currentKeyId);
  if (options.orgId) query = query.where("org_id", "=", options.orgId);
  const { count } = await query.executeTakeFirstOrThrow();
  return Number(count);
}
