import type { Db } from "../../shared/db";
import { withTenant } from "../../shared/db";

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

export async function writeRequestLog(db: Db, entry: RequestLogEntry): Promise<void> {
  await withTenant(db, entry.orgId, (tx) =>
    tx
      .insertInto("request_logs")
      .values({
        request_id: entry.requestId,
        org_id: entry.orgId,
        api_key_id: entry.apiKeyId,
        method: entry.method,
        route: entry.route,
        status: entry.status,
        latency_ms: Math.round(entry.latencyMs),
        occurred_at: entry.occurredAt,
      })
      // A client may resend its own X-Request-Id; the first record stands.
      .onConflict((oc) => oc.column("request_id").doNothing())
      .execute(),
  );
}
