import { Kysely, PostgresDialect, sql, type Transaction } from "kysely";
import { poolWithDeadlines } from "./deadline";
import { createNeonPool } from "./neonPool";
import type { Database } from "./types";

export { DatabaseTimeoutError } from "./deadline";

export type { Database } from "./types";
export type Db = Kysely<Database>;
export type Tx = Transaction<Database>;

/** The role every tenant transaction runs as: not superuser, not BYPASSRLS, owns nothing. */
export const APP_ROLE = "layers_app";

export interface DbConfig {
  databaseUrl: string;
  /**
   * Local only: "127.0.0.1:5433/v1" routes the Neon driver's WebSocket through our bridge to a plain
   * Postgres (scripts/local/ws-bridge.ts). Unset in production, where Neon terminates the WebSocket.
   */
  wsProxy?: string | undefined;
  maxConnections?: number;
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
 */
export function createDb(config: DbConfig): Db {
  const neon = createNeonPool({
    connectionString: config.databaseUrl,
    wsProxy: config.wsProxy,
    max: config.maxConnections ?? 4,
  });
  const pool = poolWithDeadlines(neon, { stepMs: config.stepTimeoutMs, closeMs: CLOSE_TIMEOUT_MS });
  return new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
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
 * connection never carries them into the next transaction. RLS policies read app.org_id; switching to
 * the app role makes RLS apply even where the connection itself is privileged (embedded PGlite).
 */
export async function withTenant<T>(db: Db, orgId: string, fn: (tx: Tx) => Promise<T>): Promise<T> {
  return db.transaction().execute(async (tx) => {
    await sql`select set_config('app.org_id', ${orgId}, true), set_config('role', ${APP_ROLE}, true)`.execute(
      tx,
    );
    return fn(tx);
  });
}
