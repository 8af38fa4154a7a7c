import { sql } from "kysely";
import pg from "pg";
import { afterAll, beforeAll, expect, test } from "vitest";
import { type ArchivedAuditRow, archiveAuditLog } from "../../../functions/archive/archiveAuditLog";
import { auditObjectKey } from "../../../functions/archive/auditKeys";
import { decodeNdjsonGz, encodeNdjsonGz } from "../../../functions/archive/ndjson";
import { maintenanceRoleUrl } from "../../../scripts/local/migrate";
import { createNodeDb } from "../../../scripts/local/node-db";
import { testDatabaseUrl } from "../../support/database";
import { type LocalS3, startLocalS3 } from "../../support/s3";
import { type Stack, startStack, waitFor } from "../../support/stack";
import { createTenant } from "../../support/tenant";
import { lastJobLog, uniq } from "./fixtures";

// The cold audit archive through the real Cron Worker in workerd (@aws-sdk/client-s3 over fetch) against
// a real S3-API server (s3rver). Audit rows stay hot for 90 days; then they are written to
// audit/<yyyy>/<mm>/<dd>/<org_id>.ndjson.gz, read back and compared, and only then deleted.

const NOW = new Date("2031-06-15T12:00:00.000Z");
// 90 days before NOW: rows strictly before this instant are archived.
const CUTOFF = "2031-03-17T12:00:00.000Z";

let s3: LocalS3;
let stack: Stack;
beforeAll(async () => {
  s3 = await startLocalS3();
  stack = await startStack({ consumer: "recorder", s3, cronVars: s3.cronVars });
});
afterAll(async () => {
  await stack?.dispose();
  await s3?.dispose();
});

async function insertAudit(orgId: string, occurredAt: string, id = uniq("aud")): Promise<string> {
  await stack.db
    .insertInto("audit_log")
    .values({
      id,
      org_id: orgId,
      occurred_at: occurredAt,
      actor_type: "api_key",
      actor_id: "key_1",
      action: "project.update",
      resource_type: "project",
      resource_id: "prj_1",
      request_id: uniq("req"),
      changes: JSON.stringify({ name: { from: "Old", to: 'Näme "quoted"\nline' } }),
    })
    .execute();
  return id;
}

/** The org's hot audit rows exactly as the archive writes them. */
async function hotRows(orgId: string): Promise<ArchivedAuditRow[]> {
  const result = await sql<ArchivedAuditRow>`
    select id, org_id, to_char(occurred_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') as occurred_at,
           actor_type, actor_id, action, resource_type, resource_id, request_id, changes
    from audit_log where org_id = ${orgId} order by occurred_at, id
  `.execute(stack.db);
  return result.rows;
}

async function archived(orgId: string, day: string): Promise<ArchivedAuditRow[] | undefined> {
  const bytes = await s3.storage.get(auditObjectKey(orgId, day));
  return bytes ? ((await decodeNdjsonGz(bytes)) as ArchivedAuditRow[]) : undefined;
}

test("rows past 90 days are archived per org and day, verified, then deleted; the boundary stays", async () => {
  const a = await createTenant(stack.db);
  const b = await createTenant(stack.db);
  await insertAudit(a.orgId, "2031-03-10T08:00:00.000001Z");
  await insertAudit(a.orgId, "2031-03-16T23:59:59.999999Z");
  await insertAudit(a.orgId, CUTOFF, uniq("boundary"));
  await insertAudit(a.orgId, "2031-03-17T11:59:59.999999Z");
  await insertAudit(b.orgId, "2031-03-16T00:00:00Z");
  const before = await hotRows(a.orgId);
  const beforeB = await hotRows(b.orgId);

  await stack.cron(NOW);
  const log = lastJobLog(stack, "audit-archive");
  expect(log.msg).toBe("cron job done");
  expect(log.counts?.audit_archived).toBeGreaterThanOrEqual(4);

  // Only the row exactly at the cutoff is still hot.
  const left = await hotRows(a.orgId);
  expect(left.map((r) => r.occurred_at)).toEqual(["2031-03-17T12:00:00.000000Z"]);
  expect(await hotRows(b.orgId)).toEqual([]);
  // Each archive holds exactly the rows that left the table, every column, byte for byte.
  const gone = before.filter((r) => r.occurred_at < CUTOFF.replace(".000Z", ".000000Z"));
  expect(await archived(a.orgId, "2031-03-10")).toEqual(
    gone.filter((r) => r.occurred_at.startsWith("2031-03-10")),
  );
  expect(await archived(a.orgId, "2031-03-16")).toEqual(
    gone.filter((r) => r.occurred_at.startsWith("2031-03-16")),
  );
  expect(await archived(a.orgId, "2031-03-17")).toEqual(
    gone.filter((r) => r.occurred_at.startsWith("2031-03-17")),
  );
  expect(await archived(b.orgId, "2031-03-16")).toEqual(beforeB);

  // A day later the rest of 2031-03-17 expires: it joins the same object, nothing lost or doubled.
  await stack.cron(new Date(NOW.getTime() + 86_400_000));
  expect(await hotRows(a.orgId)).toEqual([]);
  expect(await archived(a.orgId, "2031-03-17")).toEqual(
    before.filter((r) => r.occurred_at.startsWith("2031-03-17")),
  );
});

test("an object already there for the org-day is merged with, never overwritten", async () => {
  const t = await createTenant(stack.db);
  const day = "2031-02-01";
  // A previous run wrote X and Y and failed before deleting X; Z arrived late.
  const x = await insertAudit(t.orgId, `${day}T10:00:00Z`);
  const z = await insertAudit(t.orgId, `${day}T12:00:00Z`);
  const [xRow] = await hotRows(t.orgId);
  const yRow: ArchivedAuditRow = {
    ...(xRow as ArchivedAuditRow),
    id: uniq("earlier"),
    occurred_at: `${day}T09:00:00.000000Z`,
  };
  await s3.storage.put(
    auditObjectKey(t.orgId, day),
    await encodeNdjsonGz([yRow, xRow]),
    "application/x-ndjson",
  );
  const hot = await hotRows(t.orgId);

  await stack.cron(NOW);
  expect(await hotRows(t.orgId)).toEqual([]);
  const rows = await archived(t.orgId, day);
  expect(rows?.map((r) => r.id)).toEqual([yRow.id, x, z]);
  expect(rows?.slice(1)).toEqual(hot);
});

test("a storage outage fails the job and deletes nothing; the next run archives everything", async () => {
  const t = await createTenant(stack.db);
  for (const at of ["2031-01-05T01:00:00Z", "2031-01-05T02:00:00Z", "2031-01-06T03:00:00Z"]) {
    await insertAudit(t.orgId, at);
  }
  const before = await hotRows(t.orgId);

  await s3.stop();
  try {
    const outcome = await stack.cron(NOW);
    expect(outcome.outcome).not.toBe("ok");
    expect(lastJobLog(stack, "audit-archive").msg).toBe("cron job failed");
    // The other jobs are not held up by the archive.
    expect(lastJobLog(stack, "retention").msg).toBe("cron job done");
    expect(await hotRows(t.orgId)).toEqual(before);
  } finally {
    await s3.start();
  }

  await stack.cron(NOW);
  expect(lastJobLog(stack, "audit-archive").msg).toBe("cron job done");
  expect(await hotRows(t.orgId)).toEqual([]);
  const archivedRows = [
    ...((await archived(t.orgId, "2031-01-05")) ?? []),
    ...((await archived(t.orgId, "2031-01-06")) ?? []),
  ];
  expect(archivedRows).toEqual(before);
});

test("archives are deleted once their day is 2 years past the 90 hot days", async () => {
  // NOW - 90 days = 2031-03-17; two years before that: 2029-03-17 is kept, the day before goes.
  const orgId = uniq("org_cold");
  const body = await encodeNdjsonGz([{ id: "x" }]);
  const keys = {
    old: auditObjectKey(orgId, "2028-12-31"),
    dayBefore: auditObjectKey(orgId, "2029-03-16"),
    boundary: auditObjectKey(orgId, "2029-03-17"),
    recent: auditObjectKey(orgId, "2030-01-01"),
  };
  for (const key of Object.values(keys)) await s3.storage.put(key, body, "application/x-ndjson");

  await stack.cron(NOW);
  expect(lastJobLog(stack, "audit-archive").counts?.archives_expired).toBeGreaterThanOrEqual(2);
  const left = [];
  for (const key of Object.values(keys)) if (await s3.storage.get(key)) left.push(key);
  expect(left).toEqual([keys.boundary, keys.recent]);
});

test("a run archives at most its row budget and the next run continues the same object", async () => {
  const maintenance = createNodeDb(maintenanceRoleUrl(testDatabaseUrl()), 1);
  try {
    // Runs take the oldest due rows of any org first, and other test files write audit rows (dated now,
    // older than this org's 2030 rows) all the time: drain those, then count on this org's rows being next.
    await archiveAuditLog(maintenance, s3.storage, NOW, { chunkSize: 500, rowBudget: 1_000_000 });
    const t = await createTenant(stack.db);
    for (let i = 0; i < 5; i++) await insertAudit(t.orgId, `2030-11-02T0${i}:00:00Z`);
    const before = await hotRows(t.orgId);
    const limits = { chunkSize: 2, rowBudget: 3 };

    const first = await archiveAuditLog(maintenance, s3.storage, NOW, limits);
    expect(first.counts.audit_archived).toBe(3);
    expect(first.more).toBe(true);
    // Exactly the rows that left the table are in the object, oldest first (a row another file wrote in
    // the few milliseconds since the drain may have taken part of the budget).
    const stillHot = await hotRows(t.orgId);
    const moved = before.slice(0, before.length - stillHot.length);
    expect(moved.length).toBeGreaterThanOrEqual(1);
    expect(stillHot).toEqual(before.slice(moved.length));
    expect(await archived(t.orgId, "2030-11-02")).toEqual(moved);

    const second = await archiveAuditLog(maintenance, s3.storage, NOW, {
      chunkSize: 2,
      rowBudget: 1_000_000,
    });
    expect(second.counts.audit_archived).toBeGreaterThanOrEqual(stillHot.length);
    expect(await hotRows(t.orgId)).toEqual([]);
    expect(await archived(t.orgId, "2030-11-02")).toEqual(before);
  } finally {
    await maintenance.destroy();
  }
});

// PGlite is one session, where advisory locks never block; lock behaviour is tested on the real server.
test.runIf(Boolean(process.env.TEST_DATABASE_URL))(
  "a run waits for another run's lock on an object and merges what that run wrote",
  async () => {
    const t = await createTenant(stack.db);
    const day = "2030-10-07";
    const key = auditObjectKey(t.orgId, day);
    await insertAudit(t.orgId, `${day}T05:00:00Z`);
    const hot = await hotRows(t.orgId);
    const otherRun: ArchivedAuditRow = {
      ...(hot[0] as ArchivedAuditRow),
      id: uniq("other"),
      occurred_at: `${day}T01:00:00.000000Z`,
    };

    // "Another run" holds the object's lock, as archiveBatch does while it writes.
    const holder = new pg.Client({ connectionString: testDatabaseUrl() });
    await holder.connect();
    const maintenance = createNodeDb(maintenanceRoleUrl(testDatabaseUrl()), 1);
    try {
      await holder.query("begin");
      await holder.query("select pg_advisory_xact_lock(hashtext($1))", [key]);
      const run = archiveAuditLog(maintenance, s3.storage, NOW, { chunkSize: 100, rowBudget: 100 });
      await waitFor(async () => {
        const waiting = await holder.query(
          "select 1 from pg_locks where locktype = 'advisory' and not granted and database = (select oid from pg_database where datname = current_database())",
        );
        return waiting.rowCount ? true : undefined;
      });
      // While this run waits, the other one writes its object and finishes.
      await s3.storage.put(key, await encodeNdjsonGz([otherRun]), "application/x-ndjson");
      await holder.query("commit");
      await run;
      expect(await hotRows(t.orgId)).toEqual([]);
      expect(await archived(t.orgId, day)).toEqual([otherRun, ...hot]);
    } finally {
      await holder.end();
      await maintenance.destroy();
    }
  },
);
