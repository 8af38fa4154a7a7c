import { readFile } from "node:fs/promises";
import path from "node:path";
import { sql } from "kysely";
import { afterAll, beforeAll, expect, test } from "vitest";
import { ROOT } from "../../scripts/local/bundle";
import { createNodeDb } from "../../scripts/local/node-db";
import { DB_ROLES, type Db } from "../../shared/db";
import { testDatabaseUrl } from "../support/database";

// Least privilege is checked, not assumed: the grants each Worker's role holds in the database catalog are
// exactly the README's "Database roles" table — nothing more (a forgotten grant), nothing less (a stale doc).

let owner: Db;
beforeAll(() => {
  owner = createNodeDb(testDatabaseUrl());
});
afterAll(() => owner?.destroy());

/** "role object privilege" for each privilege; a column list is sorted, so its order in the doc is free. */
function entry(role: string, object: string, privilege: string): string {
  const columns = /^(\w+) \(([^)]*)\)$/.exec(object);
  const normalized = columns
    ? `${columns[1]} (${columns[2]!
        .split(",")
        .map((c) => c.trim())
        .sort()
        .join(", ")})`
    : object;
  return `${role} ${normalized} ${privilege.toLowerCase()}`;
}

async function documented(): Promise<string[]> {
  const readme = await readFile(path.join(ROOT, "README.md"), "utf8");
  const section = readme.slice(readme.indexOf("### Database roles"));
  const out: string[] = [];
  for (const line of section.split("\n")) {
    const cells = /^\| `(layers_\w+)` \| (.+?) \| (.+?) \|$/.exec(line);
    if (!cells) continue;
    const object = cells[2]!.replaceAll("`", "");
    for (const privilege of cells[3]!.split(",")) out.push(entry(cells[1]!, object, privilege.trim()));
  }
  return out.sort();
}

async function granted(db: Db): Promise<string[]> {
  const roles = [...DB_ROLES];
  const { rows: tables } = await sql<{ role: string; object: string; privilege: string }>`
    select r.rolname as role, c.relname as object, a.privilege_type as privilege
    from pg_class c
    cross join lateral aclexplode(c.relacl) a
    join pg_roles r on r.oid = a.grantee
    where c.relnamespace = 'public'::regnamespace and r.rolname = any(${roles}::text[])`.execute(db);
  const { rows: columns } = await sql<{ role: string; tbl: string; privilege: string; cols: string }>`
    select r.rolname as role, c.relname as tbl, a.privilege_type as privilege,
      string_agg(att.attname, ', ' order by att.attname) as cols
    from pg_attribute att
    join pg_class c on c.oid = att.attrelid
    cross join lateral aclexplode(att.attacl) a
    join pg_roles r on r.oid = a.grantee
    where c.relnamespace = 'public'::regnamespace and att.attacl is not null
      and r.rolname = any(${roles}::text[])
    group by 1, 2, 3`.execute(db);
  const { rows: functions } = await sql<{ role: string; object: string; privilege: string }>`
    select r.rolname as role, 'function ' || p.proname as object, a.privilege_type as privilege
    from pg_proc p
    cross join lateral aclexplode(p.proacl) a
    join pg_roles r on r.oid = a.grantee
    where p.pronamespace = 'public'::regnamespace and r.rolname = any(${roles}::text[])`.execute(db);
  return [
    ...tables.map((t) => entry(t.role, t.object, t.privilege)),
    ...columns.map((c) => entry(c.role, `${c.tbl} (${c.cols})`, c.privilege)),
    ...functions.map((f) => entry(f.role, f.object, f.privilege)),
  ].sort();
}

test("each Worker's role holds exactly the grants the README's Database roles table lists", async () => {
  const doc = await documented();
  expect(doc.length).toBeGreaterThan(40);
  expect(await granted(owner)).toEqual(doc);
});

test("the internet-facing ingest role can run the key lookup and nothing else", async () => {
  const readable = await owner.transaction().execute(async (tx) => {
    await sql`select set_config('role', 'layers_ingest', true)`.execute(tx);
    return sql`select 1 from sdk_keys limit 1`.execute(tx).then(
      () => "read",
      (error: { code?: string }) => error.code,
    );
  });
  expect(readable).toBe("42501"); // insufficient_privilege
});

test("the API cannot change or remove audit rows, nor write request logs except through the checked function", async () => {
  for (const statement of [
    sql`update audit_log set action = 'x'`,
    sql`delete from audit_log`,
    sql`insert into request_logs (request_id, org_id, api_key_id, method, route, status, latency_ms, occurred_at)
        values ('r', 'o', 'k', 'GET', '/', 200, 1, now())`,
  ]) {
    const code = await owner.transaction().execute(async (tx) => {
      await sql`select set_config('role', 'layers_api', true)`.execute(tx);
      return statement.execute(tx).then(
        () => "allowed",
        (error: { code?: string }) => error.code,
      );
    });
    expect(code).toBe("42501");
  }
});
