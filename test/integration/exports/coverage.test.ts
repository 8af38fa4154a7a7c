import { sql } from "kysely";
import { afterAll, beforeAll, expect, test } from "vitest";
import { EXCLUDED_TABLES, EXPORT_BUCKETS, EXPORT_RESOURCES } from "../../../functions/exports/resources";
import { createNodeDb } from "../../../scripts/local/node-db";
import type { Db } from "../../../shared/db";
import { testDatabaseUrl } from "../../support/database";
import { SYSTEM_BUCKETS } from "../../support/s3";

// The export's coverage is derived from the database catalogue and the bucket configuration, not from a
// hand-kept list: a new tenant table (one with an org_id column), a new column of an exported table, or a
// new bucket fails here until functions/exports/resources.ts exports it or names why not.

let db: Db;
beforeAll(() => {
  db = createNodeDb(testDatabaseUrl());
});
afterAll(() => db?.destroy());

async function columnsOf(): Promise<Map<string, string[]>> {
  const { rows } = await sql<{ table_name: string; column_name: string }>`
    select c.table_name, c.column_name
    from information_schema.columns c
    join information_schema.tables t on t.table_schema = c.table_schema and t.table_name = c.table_name
    where c.table_schema = 'public' and t.table_type = 'BASE TABLE'
    order by c.table_name, c.ordinal_position`.execute(db);
  const out = new Map<string, string[]>();
  for (const row of rows) out.set(row.table_name, [...(out.get(row.table_name) ?? []), row.column_name]);
  return out;
}

test("every tenant table is exported or excluded with a reason, and nothing else is listed", async () => {
  const columns = await columnsOf();
  const tenantTables = [...columns.entries()]
    .filter(([, cols]) => cols.includes("org_id"))
    .map(([table]) => table)
    .concat("organizations")
    .sort();
  expect(tenantTables.length).toBeGreaterThan(25);
  const covered = [...EXPORT_RESOURCES.map((r) => r.table), ...Object.keys(EXCLUDED_TABLES)].sort();
  expect(covered).toEqual(tenantTables);
  for (const [table, reason] of Object.entries(EXCLUDED_TABLES))
    expect(reason.length, table).toBeGreaterThan(10);
  expect(new Set(EXPORT_RESOURCES.map((r) => r.name)).size).toBe(EXPORT_RESOURCES.length);
});

test("every column of an exported table is exported or omitted with a reason", async () => {
  const columns = await columnsOf();
  for (const resource of EXPORT_RESOURCES) {
    const catalogue = [...(columns.get(resource.table) ?? [])].sort();
    const listed = [...resource.columns, ...Object.keys(resource.omitted ?? {})].sort();
    expect(listed, resource.table).toEqual(catalogue);
    for (const key of resource.key) expect(resource.columns, `${resource.table} key`).toContain(key);
  }
});

test("a resource's key is unique within an org: keyset pages can neither repeat nor skip a row", async () => {
  // A unique index (or primary key) of the table whose columns are the key, or the key plus org_id.
  for (const resource of EXPORT_RESOURCES) {
    const { rows } = await sql<{ cols: string[] }>`
      select array_agg(a.attname::text order by a.attname) as cols
      from pg_index i
      join pg_class c on c.oid = i.indrelid
      join pg_attribute a on a.attrelid = c.oid and a.attnum = any(i.indkey)
      where c.relname = ${resource.table} and i.indisunique and c.relnamespace = 'public'::regnamespace
      group by i.indexrelid`.execute(db);
    const unique = rows.map((r) => [...r.cols].sort().join(","));
    const key = [...resource.key].sort().join(",");
    const withOrg = [...resource.key, "org_id"].sort().join(",");
    expect(unique.includes(key) || unique.includes(withOrg), `${resource.table}: ${key}`).toBe(true);
  }
});

test("every bucket of ours is exported or excluded with a reason", () => {
  expect(Object.keys(EXPORT_BUCKETS).sort()).toEqual([...SYSTEM_BUCKETS].sort());
});
