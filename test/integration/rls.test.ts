import { createHash, randomUUID } from "node:crypto";
import { sql } from "kysely";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { persistEvents } from "../../functions/events/persistEvents";
import { roleUrl } from "../../scripts/local/migrate";
import { createNodeDb } from "../../scripts/local/node-db";
import { DB_ROLES, type Db, withTenant } from "../../shared/db";
import { testDatabaseUrl } from "../support/database";
import { eventsMessage, queuedEvent } from "../support/messages";
import { createTenant, type TestTenant } from "../support/tenant";

// Row-level security is the second wall: even a query with no WHERE clause sees only its own org.

// Tables the seed below fills for both orgs, and every tenant table in the schema.
const SEEDED_TABLES = [
  "organizations",
  "projects",
  "sdk_keys",
  "sdk_events",
  "sdk_users",
  "sdk_identity_links",
  "event_daily_counts",
] as const;
const TENANT_TABLES = [
  ...SEEDED_TABLES,
  "members",
  "api_keys",
  "audit_log",
  "idempotency_keys",
  "request_logs",
  "destinations",
  "deletion_requests",
  "suppressions",
  "relay_deliveries",
  "relay_dead_letters",
  "apple_attributions",
  "webhook_endpoints",
  "webhook_messages",
  "webhook_deliveries",
  "webhook_attempts",
  "project_layers",
  "storage_configs",
  "content_jobs",
  "content_containers",
  "ads_content",
  "ads_content_containers",
  "project_ads_content",
  "org_exports",
  "audit_archive_objects",
  "project_deletions",
] as const;
/**
 * The org deletion receipt: tenant-isolated like the others while the deletion runs, and besides readable
 * (select only) by a transaction that names the receipt's token digest, whatever org it was; a completed
 * receipt has no org_id at all (0014). Tested on its own below.
 */
const RECEIPT_TABLE = "org_deletions";

let owner: Db;
/** The API's role; event_daily_counts, which the API cannot read, is checked with the consumer's. */
let app: Db;
let consumer: Db;
let a: TestTenant;
let b: TestTenant;

async function seedEvents(t: TestTenant) {
  const event = queuedEvent({
    eventId: `${t.orgId}-1`,
    name: "open",
    userId: "same-user-id-in-both-orgs",
    anonymousId: "same-anonymous-id-in-both-orgs", // with the user id: an identity link in each org
    country: "SE",
    properties: { org: t.orgId },
  });
  await persistEvents(owner, eventsMessage(t, [event]));
}

beforeAll(async () => {
  owner = createNodeDb(testDatabaseUrl());
  app = createNodeDb(roleUrl(testDatabaseUrl(), "layers_api"));
  consumer = createNodeDb(roleUrl(testDatabaseUrl(), "layers_consumer"));
  a = await createTenant(owner);
  b = await createTenant(owner);
  await seedEvents(a);
  await seedEvents(b);
});
afterAll(async () => {
  await owner?.destroy();
  await app?.destroy();
  await consumer?.destroy();
});

describe("tenant isolation", () => {
  test.each(
    SEEDED_TABLES,
  )("%s: a transaction scoped to org A reads only A's rows, with no WHERE clause", async (table) => {
    const reader = table === "event_daily_counts" ? consumer : app;
    const rows = await withTenant(reader, a.orgId, async (tx) => {
      const { rows } = await sql<{
        org: string;
      }>`select ${sql.ref(table === "organizations" ? "id" : "org_id")} as org from ${sql.table(table)}`.execute(
        tx,
      );
      return rows;
    });
    expect(rows.length).toBeGreaterThan(0);
    expect(new Set(rows.map((r) => r.org))).toEqual(new Set([a.orgId]));
  });

  test.each([
    ...TENANT_TABLES,
    RECEIPT_TABLE,
  ])("%s: with no org in scope, no application role reads anything", async (table) => {
    const column = table === "organizations" ? "id" : "org_id";
    let checked = 0;
    for (const role of DB_ROLES.filter((r) => r !== "layers_maintenance")) {
      const { rows: grant } = await sql<{ readable: boolean }>`
        select has_column_privilege(${role}, ${table}, ${column}, 'SELECT') as readable`.execute(owner);
      if (!grant[0]?.readable) continue;
      checked += 1;
      const count = await owner.transaction().execute(async (tx) => {
        await sql`select set_config('role', ${role}, true)`.execute(tx);
        const { rows } = await sql<{ n: number }>`
          select count(*)::int as n from ${sql.table(table)}`.execute(tx);
        return rows[0]!.n;
      });
      expect(count, `${role} on ${table}`).toBe(0);
    }
    expect(checked, `some application role reads ${table}`).toBeGreaterThan(0);
  });

  test("org A cannot write rows into org B, nor change B's rows", async () => {
    await expect(
      withTenant(app, a.orgId, (tx) =>
        tx.insertInto("projects").values({ id: "proj_smuggled", org_id: b.orgId, name: "x" }).execute(),
      ),
    ).rejects.toThrow(/row-level security/);
    const updated = await withTenant(app, a.orgId, (tx) =>
      tx.updateTable("projects").set({ name: "hijacked" }).where("id", "=", b.projectId).executeTakeFirst(),
    );
    expect(updated.numUpdatedRows).toBe(0n);
    // A table the API may delete from: B's member survives A's unfiltered delete.
    await owner
      .insertInto("members")
      .values({ id: `mem_${b.orgId}`, org_id: b.orgId, email: "b@example.org", role: "owner" })
      .execute();
    const deleted = await withTenant(app, a.orgId, (tx) => tx.deleteFrom("members").executeTakeFirst());
    expect(deleted.numDeletedRows).toBe(0n);
    const bMembers = await owner.selectFrom("members").select("id").where("org_id", "=", b.orgId).execute();
    expect(bMembers).toHaveLength(1);
    const bProject = await owner
      .selectFrom("projects")
      .select("name")
      .where("id", "=", b.projectId)
      .executeTakeFirstOrThrow();
    expect(bProject.name).toBe("Test app");
  });

  test("org_deletions: an org reads only its own deletion; a receipt token reads only its receipt", async () => {
    const digest = (s: string) => createHash("sha256").update(s).digest("hex");
    const suffix = randomUUID().replaceAll("-", "").slice(0, 16);
    const tokens = { a: `odr_a${suffix}`, b: `odr_b${suffix}`, done: `odr_done${suffix}` };
    const now = new Date();
    await sql`insert into org_deletions (id, org_id, token_sha256, requested_at) values
      (${`odel_a${suffix}`}, ${a.orgId}, ${digest(tokens.a)}, ${now}),
      (${`odel_b${suffix}`}, ${b.orgId}, ${digest(tokens.b)}, ${now})`.execute(owner);
    await sql`insert into org_deletions (id, org_id, token_sha256, status, requested_at, finished_at, purge_after)
      values (${`odel_done${suffix}`}, null, ${digest(tokens.done)}, 'completed', ${now}, ${now}, ${now})`.execute(
      owner,
    );
    const ids = async (scope: { org?: string; token?: string }) =>
      app.transaction().execute(async (tx) => {
        if (scope.org) await sql`select set_config('app.org_id', ${scope.org}, true)`.execute(tx);
        if (scope.token)
          await sql`select set_config('app.receipt_token_sha256', ${digest(scope.token)}, true)`.execute(tx);
        const { rows } = await sql<{ id: string }>`select id from org_deletions order by id`.execute(tx);
        return rows.map((r) => r.id);
      });
    expect(await ids({ org: a.orgId })).toEqual([`odel_a${suffix}`]);
    expect(await ids({ org: b.orgId })).toEqual([`odel_b${suffix}`]);
    // By token: the one receipt, whatever org (the completed one has none), and no other.
    expect(await ids({ token: tokens.done })).toEqual([`odel_done${suffix}`]);
    expect(await ids({ token: tokens.b })).toEqual([`odel_b${suffix}`]);
    expect(await ids({ token: `odr_unknown${suffix}` })).toEqual([]);
    expect(await ids({})).toEqual([]);
    // Org A cannot open a deletion for org B, and the token policy reads only: it writes nothing.
    await expect(
      withTenant(app, a.orgId, (tx) =>
        tx
          .insertInto("org_deletions")
          .values({
            id: `odel_x${suffix}`,
            org_id: b.orgId,
            token_sha256: digest(`x${suffix}`),
            requested_at: now,
          })
          .execute(),
      ),
    ).rejects.toThrow(/row-level security/);
    await sql`delete from org_deletions where id like ${`odel_%${suffix}`}`.execute(owner);
  });

  test("the scope is transaction-local: the next transaction on the same connection sees nothing", async () => {
    const single = createNodeDb(roleUrl(testDatabaseUrl(), "layers_api"), 1);
    try {
      await withTenant(single, a.orgId, (tx) => tx.selectFrom("projects").select("id").execute());
      const { rows } = await sql<{
        org: string | null;
      }>`select current_setting('app.org_id', true) as org`.execute(single);
      expect(rows[0]!.org ?? "").toBe("");
    } finally {
      await single.destroy();
    }
  });
});

describe("the Workers' roles", () => {
  test("none is superuser, only the Cron Worker's bypasses RLS, and none owns a table", async () => {
    const { rows: roles } = await sql<{ rolname: string; rolsuper: boolean; rolbypassrls: boolean }>`
      select rolname, rolsuper, rolbypassrls from pg_roles where rolname = any(${[...DB_ROLES]}::text[])
      order by rolname`.execute(owner);
    expect(roles).toEqual(
      [...DB_ROLES].sort().map((rolname) => ({
        rolname,
        rolsuper: false,
        rolbypassrls: rolname === "layers_maintenance",
      })),
    );
    const { rows: owned } = await sql<{ tablename: string }>`
      select tablename from pg_tables
      where schemaname = 'public' and tableowner = any(${[...DB_ROLES]}::text[])`.execute(owner);
    expect(owned).toEqual([]);
  });

  test("every table in the schema has row-level security enabled and forced", async () => {
    const { rows } = await sql<{ relname: string; relrowsecurity: boolean; relforcerowsecurity: boolean }>`
      select relname, relrowsecurity, relforcerowsecurity from pg_class
      where relnamespace = 'public'::regnamespace and relkind = 'r' order by relname`.execute(owner);
    expect(rows.map((r) => r.relname).sort()).toEqual([...TENANT_TABLES, RECEIPT_TABLE].sort());
    for (const row of rows) expect(row).toMatchObject({ relrowsecurity: true, relforcerowsecurity: true });
  });

  test("migrating an up-to-date database is a no-op", async () => {
    const { migrate } = await import("../../scripts/local/migrate");
    expect(await migrate(testDatabaseUrl())).toEqual([]);
    const count = await owner
      .selectFrom("projects")
      .select(({ fn }) => fn.countAll<string>().as("n"))
      .executeTakeFirstOrThrow();
    expect(Number(count.n)).toBeGreaterThanOrEqual(2);
  });
});
