import { sql } from "kysely";
import type { Tx } from "../../shared/db";

/**
 * Withdraws the org's exports with events (POST /v1/org/exports, includeEvents) that cover `projectId`
 * and are open or downloadable: after a deletion request or a project deletion erased end users' events,
 * such an archive is a copy the deletion must reach. Each is expired with error code
 * withdrawn_by_deletion (no download URL any more), and the export expiry job deletes its objects once no
 * runner can still be writing (functions/exports/jobs.ts). The partner can export again. In the caller's
 * transaction, as the maintenance role; returns how many were withdrawn (the caller's audit row says).
 */
export async function withdrawExportsWithEvents(
  tx: Tx,
  orgId: string,
  projectId: string,
  now: Date,
): Promise<number> {
  const { numAffectedRows } = await sql`
    update org_exports set status = 'expired', error_code = 'withdrawn_by_deletion',
      finished_at = coalesce(finished_at, ${now}), state = state || '{"cleanup": true}'::jsonb
    where org_id = ${orgId} and include_events
      and (project_ids is null or ${projectId} = any(project_ids))
      and status in ('queued', 'running', 'succeeded')
  `.execute(tx);
  return Number(numAffectedRows ?? 0);
}
