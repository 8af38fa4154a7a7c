import { sql } from "kysely";
import type { Db } from "../../shared/db";
import { RECEIPT_RETENTION_DAYS } from "./deletionRequests";

const PURGE_BATCH_ROWS = 5_000;
const MAX_BATCHES_PER_RUN = 20;

/**
 * Deletion receipts (finished requests: digests, counts, timestamps; no personal data) are kept
 * RECEIPT_RETENTION_DAYS after they finished, then deleted in bounded batches. A receipt finished exactly
 * at the cutoff is kept; one a millisecond older goes.
 */
export async function purgeReceipts(
  db: Db,
  now: Date,
): Promise<{ counts: Record<string, number>; more: boolean }> {
  const cutoff = new Date(now.getTime() - RECEIPT_RETENTION_DAYS * 86_400_000);
  let purged = 0;
  for (let batch = 0; batch < MAX_BATCHES_PER_RUN; batch++) {
    const { numAffectedRows } = await sql`
      delete from deletion_requests where id in (
        select id from deletion_requests
        where finished_at < ${cutoff} and status in ('completed', 'failed')
        order by finished_at
        limit ${PURGE_BATCH_ROWS}
      )
    `.execute(db);
    const n = Number(numAffectedRows ?? 0);
    purged += n;
    if (n < PURGE_BATCH_ROWS) return { counts: { deletion_receipts: purged }, more: false };
  }
  return { counts: { deletion_receipts: purged }, more: true };
}
