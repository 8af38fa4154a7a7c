import { sql } from "kysely";
import type { Db } from "../../shared/db";

/**
 * Every row an org owns, in every tenant table (each table with an org_id column, found in the catalog, so a
 * table added later is in the snapshot without anyone listing it) plus its organizations row: what a refused
 * request must leave exactly as it was — audit log and idempotency keys included.
 *
 * request_logs is left out on purpose: the API records every authenticated request there, refusals too
 * (403/404 are logged for the org of the key that asked, by design).
 */
export async function orgSnapshot(db: Db, orgId: string): Promise<Record<string, unknown[]>> {
  const { rows: tables } = await sql<{ table_name: string }>`
    select c.table_name from information_schema.columns c
    join information_schema.tables t using (table_schema, table_name)
    where c.table_schema = 'public' and c.column_name = 'org_id' and t.table_type = 'BASE TABLE'
      and c.table_name <> 'request_logs'
    order by c.table_name`.execute(db);
  const parts = tables.map(
    ({ table_name }) =>
      sql`select ${table_name} as name, coalesce(jsonb_agg(to_jsonb(t) order by t::text), '[]') as rows
          from ${sql.table(table_name)} t where t.org_id = ${orgId}`,
  );
  parts.push(
    sql`select 'organizations' as name, coalesce(jsonb_agg(to_jsonb(t)), '[]') as rows
        from organizations t where t.id = ${orgId}`,
  );
  const { rows } = await sql<{ name: string; rows: unknown[] }>`${sql.join(parts, sql` union all `)}`.execute(
    db,
  );
  return Object.fromEntries(rows.map((r) => [r.name, r.rows]));
}
