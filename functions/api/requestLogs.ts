import { sql } from "kysely";
import type { Db, Tx } from "../../shared/db";
import { newestFirstPage } from "../../shared/db/newestFirstPage";

/** Request metadata only: who, what route, what status, how long. Never a body. Kept 30 days. */
export interface RequestLogEntry {
  requestId: string;
  orgId: string;
  apiKeyId: string;
  method: string;
  route: string;
  status: number;
  latencyMs: number;
  occurredAt: Date;
}

/**
 * One statement through the write_request_log definer function (schema.sql): every request writes one
 * row, so it skips the tenant transaction's begin/set_config/commit round trips.
 */
export async function writeRequestLog(db: Db, entry: RequestLogEntry): Promise<void> {
  await sql`select write_request_log(${entry.requestId}, ${entry.orgId}, ${entry.apiKeyId}, ${entry.method},
    ${entry.route}, ${entry.status}::integer, ${Math.round(entry.latencyMs)}::integer,
    ${entry.occurredAt.toISOString()}::timestamptz)`.execute(db);
}

export interface RequestLog {
  requestId: string;
  apiKeyId: string;
  method: string;
  route: string;
  status: number;
  latencyMs: number;
  occurredAt: Date;
}

export interface RequestLogFilter {
  status?: number | undefined;
  apiKeyId?: string | undefined;
  /** occurred_at ≥ from. */
  from?: Date | undefined;
  /** occurred_at < to. */
  to?: Date | undefined;
}

/**
 * The org's request metadata (RLS scopes it to the transaction's org), newest first, keyset-paginated on
 * (occurred_at, request_id). A cursor that is not one of the org's request ids matches nothing.
 */
export async function listRequestLogs(
  tx: Tx,
  filter: RequestLogFilter,
  page: { limit: number; startingAfter?: string | undefined },
): Promise<{ data: RequestLog[]; hasMore: boolean }> {
  let query = tx
    .selectFrom("request_logs")
    .select(["request_id", "api_key_id", "method", "route", "status", "latency_ms", "occurred_at"]);
  if (filter.status !== undefined) query = query.where("status", "=", filter.status);
  if (filter.apiKeyId !== undefined) query = query.where("api_key_id", "=", filter.apiKeyId);
  if (filter.from !== undefined) query = query.where("occurred_at", ">=", filter.from);
  if (filter.to !== undefined) query = query.where("occurred_at", "<", filter.to);
  const after = page.startingAfter;
  const { rows, hasMore } = await newestFirstPage(
    query,
    { time: "occurred_at", id: "request_id" },
    page.limit,
    after
      ? {
          id: after,
          time: tx.selectFrom("request_logs").select("occurred_at").where("request_id", "=", after),
        }
      : undefined,
  );
  return {
    data: rows.map((row) => ({
      requestId: row.request_id,
      apiKeyId: row.api_key_id,
      method: row.method,
      route: row.route,
      status: row.status,
      latencyMs: row.latency_ms,
      occurredAt: row.occurred_at,
    })),
    hasMore,
  };
}
