import { neonConfig, Pool } from "@neondatabase/serverless";
import { Kysely, PostgresDialect, sql, type Transaction } from "kysely";
import type { Database } from "./types";

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
}

/**
 * A Kysely handle over the Neon serverless Pool. In a Worker, create one per request or queue batch and
 * `destroy()` it at the end: workerd does not let a socket outlive the request that opened it.
 */
export function createDb(config: DbConfig): Db {
  if (config.wsProxy) {
    const proxy = config.wsProxy;
    neonConfig.wsProxy = (host, port) => `${proxy}?address=${host}:${port}`;
    neonConfig.useSecureWebSocket = false;
    neonConfig.pipelineTLS = false;
    neonConfig.pipelineConnect = false;
  }
  const pool = new Pool({ connectionString: config.databaseUrl, max: config.maxConnections ?? 4 });
  return new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
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
