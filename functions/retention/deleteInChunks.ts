import { type QueryResult, type RawBuilder, sql } from "kysely";
import type { Db } from "../../shared/db";

export interface ChunkedDelete {
  table: string;
  /** Which rows are expired; must be answerable from an index on `orderBy` (see schema.sql). */
  where: RawBuilder<unknown>;
  /**
   * The time column that index is ordered by. Ordering the chunk by it keeps the plan an index range
   * scan that starts at the oldest row: without it a sequential scan with LIMIT looks cheap, but every
   * chunk would re-read the dead tuples the chunks before it left at the start of the table.
   */
  orderBy: string;
}

interface ChunkResult {
  removed: string;
  last: string | null;
}

/**
 * Deletes the rows matching `where`, `chunkSize` at a time, at most `budget` in all. Every chunk is one
 * statement, so its own short transaction: concurrent writers wait for at most one chunk, a run cut
 * short keeps what it already deleted, and the next run simply finds fewer rows. `more` means the budget
 * ran out while rows may remain.
 *
 * A chunk is picked by the time index, oldest first, and deleted by tuple id (a TID scan). Two things keep
 * each chunk's cost flat however many came before it (both measured on 1M rows, see test/bench/purge.ts):
 *  - the next chunk starts its index scan at the newest time the last chunk saw, instead of walking over
 *    the index entries of rows the earlier chunks deleted (they stay until vacuum);
 *  - rows are deleted by tuple id: joining the chunk back by primary key lets the planner choose a hash
 *    join over a sequential scan of the whole table, for every chunk.
 * The predicate is repeated on the delete, so a row changed since it was picked is left for the next run.
 */
export async function deleteInChunks(
  db: Db,
  spec: ChunkedDelete,
  chunkSize: number,
  budget: number,
): Promise<{ deleted: number; more: boolean }> {
  const table = sql.table(spec.table);
  const column = sql.ref(spec.orderBy);
  let deleted = 0;
  // The newest time seen so far, as Postgres prints it (it parses it back exactly, microseconds included).
  let from: string | null = null;
  while (deleted < budget) {
    const limit = Math.min(chunkSize, budget - deleted);
    const resume: RawBuilder<unknown> = from === null ? sql`true` : sql`${column} >= ${from}`;
    const result: QueryResult<ChunkResult> = await sql<ChunkResult>`
      with chunk as (
        select ctid, ${column} as at from ${table}
        where ${spec.where} and ${resume}
        order by ${column} limit ${limit}
      ), gone as (
        delete from ${table}
        where ctid = any(array(select ctid from chunk)) and ${spec.where}
        returning 1
      )
      select (select count(*) from gone) as removed, (select max(at)::text from chunk) as last
    `.execute(db);
    const row: ChunkResult | undefined = result.rows[0];
    const removed = Number(row?.removed ?? 0);
    deleted += removed;
    if (removed < limit || !row?.last) return { deleted, more: false };
    from = row.last;
  }
  return { deleted, more: true };
}
