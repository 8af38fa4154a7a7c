import { type Expression, type SelectQueryBuilder, sql } from "kysely";
import type { DB as Database } from "./types";

export interface PageCursor {
  /** The last id of the previous page, as the client sent it back (`starting_after`). */
  id: string;
  /** That row's time: a subquery on the same table, scoped as the caller needs (org by RLS, project…). */
  time: Expression<unknown>;
}

/**
 * One page of a list, newest first, keyset-paginated on (time, id): rows written while a client pages
 * never shift or repeat a page. A cursor that names no row the caller can see matches nothing (its time
 * subquery is NULL): an empty page, never another tenant's position. Every list endpoint pages this way.
 */
export async function newestFirstPage<TB extends keyof Database, O>(
  query: SelectQueryBuilder<Database, TB, O>,
  columns: { time: string; id: string },
  limit: number,
  after?: PageCursor,
): Promise<{ rows: O[]; hasMore: boolean }> {
  const time = sql.ref(columns.time);
  const id = sql.ref(columns.id);
  let q = query.orderBy(sql`${time} desc, ${id} desc`);
  if (after) {
    q = q.where(
      sql<boolean>`(${time} < (${after.time}) or (${time} = (${after.time}) and ${id} < ${after.id}))`,
    );
  }
  const rows = (await q.limit(limit + 1).execute()) as O[];
  return { rows: rows.slice(0, limit), hasMore: rows.length > limit };
}
