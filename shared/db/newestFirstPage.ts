import { type SelectQueryBuilder, sql } from "kysely";
import type { DB as Database } from "./types";

/** How a list pages: the table's time and id columns, the page size and the client's cursor. */
export interface PageOf<T extends keyof Database> {
  /** The listed table: the cursor's row is looked up there. */
  table: T;
  time: keyof Database[T] & string;
  id: keyof Database[T] & string;
  limit: number;
  /** The last id of the previous page, as the client sent it back (`starting_after`). */
  startingAfter?: string | undefined;
  /**
   * Columns the cursor's row must also match (`{ project_id }`) where the id alone is unique only within
   * a scope; the org is always matched by RLS.
   */
  cursorScope?: Partial<Record<keyof Database[T] & string, string>>;
}

/**
 * One page of a list, newest first, keyset-paginated on (time, id): rows written while a client pages
 * never shift or repeat a page. The cursor's time is read by a subquery on the same table, in the same
 * transaction (so under the same RLS scope): a cursor that names no row the caller can see matches
 * nothing (its time is NULL), an empty page, never another tenant's position. Every list endpoint pages
 * this way.
 */
export async function newestFirstPage<T extends keyof Database, TB extends keyof Database, O>(
  query: SelectQueryBuilder<Database, TB, O>,
  page: PageOf<T>,
): Promise<{ rows: O[]; hasMore: boolean }> {
  const time = sql.ref(page.time);
  const id = sql.ref(page.id);
  let q = query.orderBy(sql`${time} desc, ${id} desc`);
  const after = page.startingAfter;
  if (after) {
    const scope = Object.entries(page.cursorScope ?? {}).map(
      ([column, value]) => sql`and ${sql.ref(column)} = ${value}`,
    );
    const scoped = scope.length > 0 ? sql.join(scope, sql` `) : sql``;
    const cursorTime = sql`(select ${time} from ${sql.table(page.table)} where ${id} = ${after} ${scoped} limit 1)`;
    q = q.where(sql<boolean>`(${time} < ${cursorTime} or (${time} = ${cursorTime} and ${id} < ${after}))`);
  }
  const rows = (await q.limit(page.limit + 1).execute()) as O[];
  return { rows: rows.slice(0, page.limit), hasMore: rows.length > page.limit };
}
