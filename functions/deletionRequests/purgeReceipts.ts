import { sql } from "kysely";
import type { Db } from "../../shared/db";
import { deleteInChunks } from "../retention/deleteInChunks";
import { RECEIPT_RETENTION_DAYS } from "./store";

const PURGE_BATCH_ROWS = 5_000;
const MAX_ROWS_PER_RUN = 100_000;

/**
 * Deletion receipts (finished requests: digests, counts, timestamps; no personal data) are kept
 * RECEIPT_RETENTION_DAYS after they finished, then deleted in bounded chunks by the retention helper,
 * oldest first through the deletion_requests_finished index. A receipt finished exactly at the cutoff is
 * kept; one a millisecond older goes.
 */
export async function purgeReceipts(
  db: Db,
  now: Date,
): Promise<{ counts: Record<string, number>; more: boolean }> {
  const cutoff = new Date(now.getTime() - RECEIPT_RETENTION_DAYS * 86_400_000);
  const { deleted, more } = await deleteInChunks(
    db,
    {
      table: "deletion_requests",
      where: sql`finished_at < ${cutoff} and status in ('completed', 'failed')`,
      orderBy: "finished_at",
    },
    PURGE_BATCH_ROWS,
    MAX_ROWS_PER_RUN,
  );
  return { counts: { deletion_receipts: deleted }, more };
}
