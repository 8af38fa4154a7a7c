import { sql } from "kysely";
import type { Tx } from "../../shared/db";

/**
 * The relay's half of erasure: which of `eventIds` (events of one project that the consumer stored) may
 * still leave for a platform. A deletion request or suppression can arrive while a batch is queued,
 * retrying, dead-lettered or waiting for replay; the consumer's rule (schema.sql erased_by_request_v2, which follows
 * identity links from an anonymous event to its user) is
 * applied again to the stored rows, and an event whose row is gone (erased, or past retention) is not
 * sent either. `since`: the earliest time the events were received, when known — if the project has no
 * deletion request made since then and no suppression, nothing is erased and the rows are not read.
 * Returns the ids to keep, in input order. Runs in the caller's tenant transaction.
 */
export async function notErased(
  tx: Tx,
  projectId: string,
  eventIds: readonly string[],
  since?: string,
): Promise<string[]> {
  if (eventIds.length === 0) return [];
  const { rows: guard } = await sql<{ any_rule: boolean }>`
    select exists (select 1 from deletion_requests
                   where project_id = ${projectId} and requested_at >= ${since ?? "-infinity"}::timestamptz)
      or exists (select 1 from suppressions where project_id = ${projectId}) as any_rule`.execute(tx);
  if (!guard[0]?.any_rule) return [...eventIds];
  const { rows } = await sql<{ event_id: string }>`
    select e.event_id from sdk_events e
    where e.project_id = ${projectId} and e.event_id = any(${[...eventIds]}::text[])
      and not erased_by_request_v2(${projectId}, e.received_at, e.user_id, e.email_sha256, e.phone_sha256,
        e.anonymous_id)`.execute(tx);
  const kept = new Set(rows.map((r) => r.event_id));
  return eventIds.filter((id) => kept.has(id));
}
