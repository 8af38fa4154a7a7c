import { sql } from "kysely";
import type { Db } from "../../shared/db";
import { newestFirstPage } from "../../shared/db/newestFirstPage";
import { sha256Hex } from "../../shared/hash";
import { displayPrefix, newId, newSecret } from "../../shared/ids";
import type { Role } from "../../shared/roles";

export type KeyMode = "live" | "test";
export const apiKeyPrefix = (mode: KeyMode) => `lp_${mode}_`;
/** Longest grace period a rotation may give the old key. */
export const MAX_ROTATION_GRACE_SECONDS = 7 * 86_400;

export interface ApiKey {
  id: string;
  name: string;
  role: Role;
  projectId: string | null;
  mode: KeyMode;
  displayPrefix: string;
  createdAt: Date;
  expiresAt: Date | null;
  revokedAt: Date | null;
  rotatedTo: string | null;
}

export interface CreatedApiKey extends ApiKey {
  /** Shown once, in the creation (or rotation) response. Only its SHA-256 is stored. */
  secret: string;
}

export interface ApiKeyIdentity {
  keyId: string;
  orgId: string;
  role: Role;
  projectId: string | null;
  mode: KeyMode;
}

const COLUMNS = [
  "id",
  "name",
  "role",
  "project_id",
  "mode",
  "display_prefix",
  "created_at",
  "expires_at",
  "revoked_at",
  "rotated_to",
] as const;

type Row = {
  id: string;
  name: string;
  role: Role;
  project_id: string | null;
  mode: KeyMode;
  display_prefix: string;
  created_at: Date;
  expires_at: Date | null;
  revoked_at: Date | null;
  rotated_to: string | null;
};

function toApiKey(row: Row): ApiKey {
  return {
    id: row.id,
    name: row.name,
    role: row.role,
    projectId: row.project_id,
    mode: row.mode,
    displayPrefix: row.display_prefix,
    createdAt: row.created_at,
    expiresAt: row.expires_at,
    revokedAt: row.revoked_at,
    rotatedTo: row.rotated_to,
  };
}

/** Which live key (not revoked, not past its rotation grace period at `now`) has this secret? */
export async function resolveApiKey(db: Db, secret: string, now: Date): Promise<ApiKeyIdentity | null> {
  const { rows } = await sql<{
    key_id: string;
    org_id: string;
    role: Role;
    project_id: string | null;
    mode: KeyMode;
  }>`
    select * from resolve_api_key(${await sha256Hex(secret)}, ${now.toISOString()}::timestamptz)`.execute(db);
  const row = rows[0];
  return row
    ? { keyId: row.key_id, orgId: row.org_id, role: row.role, projectId: row.project_id, mode: row.mode }
    : null;
}

export async function createApiKey(
  db: Db,
  orgId: string,
  input: { name: string; role: Role; projectId?: string | null; mode: KeyMode },
  now: Date,
): Promise<CreatedApiKey> {
  const prefix = apiKeyPrefix(input.mode);
  const secret = newSecret(prefix);
  const row = await db
    .insertInto("api_keys")
    .values({
      id: newId("key"),
      org_id: orgId,
      name: input.name,
      role: input.role,
      project_id: input.projectId ?? null,
      mode: input.mode,
      key_sha256: await sha256Hex(secret),
      display_prefix: displayPrefix(secret, prefix.length),
      created_at: now,
    })
    .returning(COLUMNS)
    .executeTakeFirstOrThrow();
  return { ...toApiKey(row), secret };
}

export async function getApiKey(db: Db, keyId: string): Promise<ApiKey | null> {
  const row = await db.selectFrom("api_keys").select(COLUMNS).where("id", "=", keyId).executeTakeFirst();
  return row ? toApiKey(row) : null;
}

export async function listApiKeys(
  db: Db,
  page: { limit: number; startingAfter?: string | undefined },
): Promise<{ data: ApiKey[]; hasMore: boolean }> {
  const { rows, hasMore } = await newestFirstPage(db.selectFrom("api_keys").select(COLUMNS), {
    table: "api_keys",
    time: "created_at",
    id: "id",
    ...page,
  });
  return { data: rows.map(toApiKey), hasMore };
}

/**
 * Issues a new secret for the key's name/role/project and retires the old one: immediately with a grace of
 * 0, else at now + grace. Returns null when the key does not exist or is no longer live.
 */
export async function rotateApiKey(
  db: Db,
  orgId: string,
  keyId: string,
  graceSeconds: number,
  now: Date,
): Promise<{ old: ApiKey; created: CreatedApiKey } | null> {
  const current = await getApiKey(db, keyId);
  if (!current || current.revokedAt || (current.expiresAt && current.expiresAt <= now)) return null;
  const created = await createApiKey(
    db,
    orgId,
    { name: current.name, role: current.role, projectId: current.projectId, mode: current.mode },
    now,
  );
  const retireAt = new Date(now.getTime() + graceSeconds * 1000);
  const old = await db
    .updateTable("api_keys")
    .set(
      graceSeconds === 0
        ? { revoked_at: now, rotated_to: created.id }
        : { expires_at: retireAt, rotated_to: created.id },
    )
    .where("id", "=", keyId)
    .returning(COLUMNS)
    .executeTakeFirstOrThrow();
  return { old: toApiKey(old), created };
}

/** Why a revoke was refused; the verb (verbs.ts) maps each to its API error. */
export type RevokeRefusal = "not_found" | "already_revoked" | "last_owner_key";

/**
 * Revokes at once. The org's last live owner key is never revoked: without it nobody could manage owners
 * or the org again. The org row is locked first, so two concurrent revokes of the last two owner keys cannot
 * both pass the check (the same lock serializes member changes).
 */
export async function revokeApiKey(
  db: Db,
  orgId: string,
  keyId: string,
  now: Date,
): Promise<{ before: ApiKey; after: ApiKey } | { refused: RevokeRefusal }> {
  await db.selectFrom("organizations").select("id").where("id", "=", orgId).forUpdate().execute();
  const before = await getApiKey(db, keyId);
  if (!before) return { refused: "not_found" };
  if (before.revokedAt || (before.expiresAt && before.expiresAt <= now))
    return { refused: "already_revoked" };
  if (before.role === "owner") {
    const { others } = await db
      .selectFrom("api_keys")
      .select((eb) => eb.fn.countAll<string>().as("others"))
      .where("role", "=", "owner")
      .where("id", "!=", keyId)
      .where("revoked_at", "is", null)
      .where((eb) => eb.or([eb("expires_at", "is", null), eb("expires_at", ">", now)]))
      .executeTakeFirstOrThrow();
    if (Number(others) === 0) return { refused: "last_owner_key" };
  }
  const row = await db
    .updateTable("api_keys")
    .set({ revoked_at: now })
    .where("id", "=", keyId)
    .returning(COLUMNS)
    .executeTakeFirstOrThrow();
  return { before, after: toApiKey(row) };
}
