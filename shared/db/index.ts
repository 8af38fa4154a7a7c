import { Kysely, PostgresDialect, sql, type Transaction } from "kysely";
import { poolWithDeadlines } from "./deadline";
import { createNeonPool } from "./neonPool";
import type { DB } from "./types";

export { DatabaseTimeoutError } from "./deadline";

/** Kysely's view of the database: the row types generated from the migrations (shared/db/types.ts). */
export type Database = DB;
export type Db = Kysely<Database>;
export type Tx = Transaction<Database>;

/**
 * The database role of each Worker: each has only the grants its Worker needs (README, Database roles). None
 * is superuser; only layers_maintenance (the Cron Worker, whose jobs span orgs) bypasses RLS.
 */
export const DB_ROLES = [
  "layers_ingest",
  "layers_consumer",
  "layers_relay",
  "layers_api",
  "layers_maintenance",
  "layers_webhooks",
  "layers_content",
] as const;
export type DbRole = (typeof DB_ROLES)[number];

/** The role a connection string logs in as, when it is one of ours (undefined for the owner, in tooling). */
export function roleOfUrl(databaseUrl: string): DbRole | undefined {
  let user: string;
  try {
    user = decodeURIComponent(new URL(databaseUrl).username);
  } catch {
    return undefined;
  }
  return (DB_ROLES as readonly string[]).includes(user) ? (user as DbRole) : undefined;
}

// The role each handle's tenant transactions switch to (see withTenant).
const tenantRoles = new WeakMap<Db, DbRole>();

/** Records the role `db`'s tenant transactions run as; createDb does this from the connection string. */
export function setTenantRole(db: Db, role: DbRole | undefined): Db {
  if (role) tenantRoles.set(db, role);
  return db;
}

export interface DbConfig {
  databaseUrl: string;
  /**
   * Local only: "127.0.0.1:5433/v1" routes the Neon driver's WebSocket through our bridge to a plain
   * Postgres (scripts/local/ws-bridge.ts). Unset in production, where Neon terminates the WebSocket.
   */
  wsProxy?: string | undefined;
  maxConnections?: number;
  /** The role tenant transactions run as; default: the role the connection string logs in as. */
  role?: DbRole;
  /**
   * A deadline for every database step: getting a connection, and each query. Queue Workers set it, so a
   * connection whose socket died silently fails its message (retried with backoff) instead of holding the
   * invocation, and with it the queue, forever. Unset: no deadline.
   */
  stepTimeoutMs?: number | undefined;
}

/**
 * A Kysely handle over the Neon serverless Pool. In a Worker, create one per request or queue batch and
 * close it with closeDb at the end: workerd does not let a socket outlive the request that opened it.
 * The pool is built on the first query, so a request that never uses the handle (an API read served over
 * HTTP) pays nothing for it.
 */
export function createDb(config: DbConfig): Db {
  const pool = async () =>
    poolWithDeadlines(
      createNeonPool({
        connectionString: config.databaseUrl,
        wsProxy: config.wsProxy,
        max: config.maxConnections ?? 4,
      }),
      { stepMs: config.stepTimeoutMs, closeMs: CLOSE_TIMEOUT_MS },
    );
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  return setTenantRole(db, config.role ?? roleOfUrl(config.databaseUrl));
}

/** How long closing waits for the connections to close cleanly before closing their sockets outright. */
const CLOSE_TIMEOUT_MS = 2_000;

/**
 * Closes a handle's connections; never rejects, and never waits on a dead socket for longer than
 * CLOSE_TIMEOUT_MS (past it, the sockets still open are closed outright). Hand it to `ctx.waitUntil` at the
 * end of a request or queue batch rather than awaiting it in a `finally`: the outcome is already known.
 */
export async function closeDb(db: Db): Promise<void> {
  await db.destroy().catch(() => {});
}

/**
 * Runs `fn` in a transaction scoped to one org. Both settings are transaction-local (`true`): a pooled
 * connection never carries them into the next transaction. RLS policies read app.org_id. Switching to the
 * handle's role makes RLS and that role's grants apply even where the connection itself is privileged (the
 * embedded PGlite serves every connection as its superuser); a tooling handle on the owner connection has
 * no role and is scoped by app.org_id alone.
 */
export async function withTenant<T>(db: Db, orgId: string, fn: (tx: Tx) => Promise<T>): Promise<T> {
  const role = tenantRoles.get(db);
  return db.transaction().execute(async (tx) => {
    await (role
      ? sql`select set_config('app.org_id', ${orgId}, true), set_config('role', ${role}, true)`
      : sql`select set_config('app.org_id', ${orgId}, true)`
    ).execute(tx);
    return fn(tx);
  });
}

/**
 * A Postgres "data exception" (SQLSTATE class 22: invalid text or JSON, a character the encoding refuses,
 * a value out of range): the same input fails every time, so retrying cannot help and the caller's input,
 * not the database, is at fault. Anything else (a lost connection, a timeout, a lock) may pass on a retry.
 */
export function isDataError(error: unknown): error is { code: string } {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "string" && /^22[0-9A-Z]{3}$/.test(code);
}
