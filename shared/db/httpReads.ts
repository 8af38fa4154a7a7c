import { type FullQueryResults, neon, neonConfig } from "@neondatabase/serverless";
import {
  type CompiledQuery,
  type DatabaseConnection,
  type Driver,
  Kysely,
  PostgresAdapter,
  PostgresIntrospector,
  PostgresQueryCompiler,
  type QueryResult,
} from "kysely";
import type { Database, Db, DbRole } from "./index";

export interface HttpReadsConfig {
  databaseUrl: string;
  /**
   * Local only: "127.0.0.1:5434" sends the driver's HTTP queries to the local stand-in for Neon's SQL-over-
   * HTTP endpoint (scripts/local/neon-http.ts). Unset in production, where Neon serves them.
   */
  httpProxy?: string | undefined;
  role: DbRole;
}

/**
 * Reads scoped to one org over Neon's SQL-over-HTTP endpoint: no connection to open, one HTTP round trip
 * per query. Each query runs as its own read-only transaction of two statements — first the tenant settings
 * (`app.org_id` and the role, transaction-local as in withTenant), then the query — so RLS and the role's
 * grants apply exactly as over a connection. Queries of one read are separate transactions (each sees its
 * own snapshot): for reads, never for a change, which needs one interactive transaction (withTenant).
 */
export function createHttpReads(config: HttpReadsConfig) {
  if (config.httpProxy) {
    const proxy = config.httpProxy;
    neonConfig.fetchEndpoint = () => `http://${proxy}/sql`;
  }
  const sql = neon(config.databaseUrl, { fullResults: true });
  const handle = (orgId: string | null, readOnly: boolean): Db =>
    new Kysely<Database>({
      dialect: {
        createAdapter: () => new PostgresAdapter(),
        createDriver: () => new TenantHttpDriver(sql, { orgId, role: config.role, readOnly }),
        createIntrospector: (db) => new PostgresIntrospector(db),
        createQueryCompiler: () => new PostgresQueryCompiler(),
      },
    });
  // Built once: they hold no connection and no org.
  const withoutOrg = { readOnly: handle(null, true), writes: handle(null, false) };
  return {
    /** A Kysely handle whose every query runs as org `orgId`, read-only. */
    as(orgId: string): Db {
      return handle(orgId, true);
    },
    /**
     * A handle with the role and no org, for the security-definer functions that run before the org is
     * known (resolve_api_key) or check it themselves (write_request_log): tenant tables read through it
     * show nothing. `readOnly: false` only for such one-statement writes, each its own transaction.
     */
    withoutOrg(options: { readOnly: boolean }): Db {
      return options.readOnly ? withoutOrg.readOnly : withoutOrg.writes;
    },
  };
}

export type HttpReads = ReturnType<typeof createHttpReads>;

type Sql = ReturnType<typeof neon<false, true>>;

class TenantHttpDriver implements Driver {
  readonly #connection: DatabaseConnection;
  constructor(sql: Sql, scope: { orgId: string | null; role: DbRole; readOnly: boolean }) {
    // Transaction-local (`true`), as in withTenant: nothing outlives the query's own transaction.
    const settings = () =>
      scope.orgId === null
        ? sql.query("select set_config('role', $1, true)", [scope.role])
        : sql.query("select set_config('app.org_id', $1, true), set_config('role', $2, true)", [
            scope.orgId,
            scope.role,
          ]);
    this.#connection = {
      async executeQuery<R>(compiled: CompiledQuery): Promise<QueryResult<R>> {
        const [, result] = (await sql.transaction(
          [settings(), sql.query(compiled.sql, [...compiled.parameters])],
          { readOnly: scope.readOnly },
        )) as FullQueryResults<false>[];
        return { rows: (result?.rows ?? []) as R[] };
      },
      streamQuery(): AsyncIterableIterator<QueryResult<never>> {
        throw new Error("streaming is not available over HTTP");
      },
    };
  }
  async init(): Promise<void> {}
  async acquireConnection(): Promise<DatabaseConnection> {
    return this.#connection;
  }
  async beginTransaction(): Promise<void> {
    throw new Error("reads over HTTP run one query per transaction; use withTenant for a transaction");
  }
  async commitTransaction(): Promise<void> {}
  async rollbackTransaction(): Promise<void> {}
  async releaseConnection(): Promise<void> {}
  async destroy(): Promise<void> {}
}
