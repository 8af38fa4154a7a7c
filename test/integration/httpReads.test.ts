import { afterAll, beforeAll, expect, test } from "vitest";
import { createProject } from "../../functions/projects/store";
import { roleUrl } from "../../scripts/local/migrate";
import { type NeonHttp, startNeonHttp } from "../../scripts/local/neon-http";
import { createNodeDb } from "../../scripts/local/node-db";
import { type Db, withTenant } from "../../shared/db";
import { createHttpReads } from "../../shared/db/httpReads";
import { testDatabaseUrl } from "../support/database";
import { createTenant, type TestTenant } from "../support/tenant";

// Reads over Neon's SQL-over-HTTP endpoint (a local stand-in here) keep the tenant guarantees of a
// connection exactly: the org's settings are transaction-local, RLS and the role's grants apply, and the
// values come back typed as over the wire.

let http: NeonHttp;
let owner: Db;
let api: Db;
let a: TestTenant;
let b: TestTenant;
let reads: ReturnType<typeof createHttpReads>;

beforeAll(async () => {
  const ownerUrl = testDatabaseUrl();
  const target = new URL(ownerUrl);
  http = await startNeonHttp({ host: target.hostname, port: Number(target.port || 5432) });
  owner = createNodeDb(ownerUrl);
  api = createNodeDb(roleUrl(ownerUrl, "layers_api"));
  a = await createTenant(owner);
  b = await createTenant(owner);
  reads = createHttpReads({
    databaseUrl: roleUrl(ownerUrl, "layers_api"),
    httpProxy: `127.0.0.1:${http.port}`,
    role: "layers_api",
  });
});
afterAll(async () => {
  await owner?.destroy();
  await api?.destroy();
  await http?.close();
});

test("a read with no WHERE clause sees only its org's rows, as over a connection", async () => {
  const projects = await reads.as(a.orgId).selectFrom("projects").select(["id", "org_id"]).execute();
  expect(projects.length).toBeGreaterThan(0);
  expect(new Set(projects.map((p) => p.org_id))).toEqual(new Set([a.orgId]));
  const keys = await reads.as(b.orgId).selectFrom("sdk_keys").select("project_id").execute();
  expect(new Set(keys.map((k) => k.project_id))).toEqual(new Set([b.projectId]));
});

test("values come back typed exactly as over a connection (timestamps, json, bigints, nulls)", async () => {
  await withTenant(owner, a.orgId, (tx) =>
    createProject(tx, a.orgId, { name: "Typed", eventRetentionDays: 90 }),
  );
  const query = (db: Db) =>
    db
      .selectFrom("projects")
      .selectAll()
      .where("org_id", "=", a.orgId)
      .orderBy("created_at")
      .orderBy("id")
      .execute();
  const overHttp = await query(reads.as(a.orgId));
  const overConnection = await withTenant(api, a.orgId, (tx) => query(tx));
  expect(overHttp).toEqual(overConnection);
  expect(overHttp[0]?.created_at).toBeInstanceOf(Date);
});

test("the role's grants apply and the transaction is read-only: no write gets through", async () => {
  await expect(
    reads
      .as(a.orgId)
      .insertInto("projects")
      .values({ id: "proj_viaHttp", org_id: a.orgId, name: "x" })
      .execute(),
  ).rejects.toThrow(/read-only/);
  // layers_api may not read event_daily_counts at all.
  await expect(
    reads.as(a.orgId).selectFrom("event_daily_counts").select("day").execute(),
  ).rejects.toMatchObject({
    code: "42501",
  });
  const none = await owner.selectFrom("projects").select("id").where("id", "=", "proj_viaHttp").execute();
  expect(none).toEqual([]);
});

test("the org setting never outlives its query: a statement sent without it sees nothing", async () => {
  const { neon } = await import("@neondatabase/serverless");
  const sql = neon(roleUrl(testDatabaseUrl(), "layers_api"));
  await reads.as(a.orgId).selectFrom("projects").select("id").execute();
  const rows = await sql.query("select count(*)::int as n from projects");
  expect(rows).toEqual([{ n: 0 }]);
});
