import { type SelectQueryBuilder, sql } from "kysely";
import type { DB as Database } from "./types";

/**
 * A list's optional filters: each named column equal to its value, and a time column within [from, to).
 * A filter left out (undefined or null) matches every row; a list endpoint passes its query parameters
 * straight through.
 */
export function withFilters<TB extends keyof Database, O>(
  query: SelectQueryBuilder<Database, TB, O>,
  filters: {
    equal?: Partial<Record<keyof Database[TB] & string, string | number | null | undefined>>;
    time?: { column: keyof Database[TB] & string; from?: Date | undefined; to?: Date | undefined };
  },
): SelectQueryBuilder<Database, TB, O> {
  let q = query;
  for (const [column, value] of Object.entries(filters.equal ?? {})) {
    if (value !== undefined && value !== null) q = q.where(sql<boolean>`${sql.ref(column)} = ${value}`);
  }
  const time = filters.time;
  if (time?.from) q = q.where(sql<boolean>`${sql.ref(time.column)} >= ${time.from}`);
  if (time?.to) q = q.where(sql<boolean>`${sql.ref(time.column)} < ${time.to}`);
  return q;
}
