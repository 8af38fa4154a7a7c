import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, expect, test } from "vitest";
import { COLD_AUDIT_FILE, EXCLUDED_TABLES, EXPORT_RESOURCES } from "../../../functions/exports/resources";
import { advanceExport, DEFAULT_EXPORT_LIMITS } from "../../../functions/exports/runExport";
import { runDeletions } from "../../../functions/lifecycle/cascade";
import { planSteps, readCatalogue } from "../../../functions/lifecycle/catalogue";
import type { LifecycleStores } from "../../../functions/lifecycle/objects";
import type { ObjectStore } from "../../../functions/storage/objectStore";
import { maintenanceRoleUrl, roleUrl } from "../../../scripts/local/migrate";
import { createNodeDb } from "../../../scripts/local/node-db";
import type { Db } from "../../../shared/db";
import { addApiKey } from "../../support/apiTenant";
import { testDatabaseUrl } from "../../support/database";
import { orgSnapshot } from "../../support/orgSnapshot";
import {
  ARCHIVE_BUCKET,
  DEAD_LETTER_BUCKET,
  EXPORT_BUCKET,
  MEDIA_BUCKET,
  SYSTEM_BUCKETS,
} from "../../support/s3";
import { findInTables, objectTexts } from "../../support/scan";
import { type Stack, startStack } from "../../support/stack";
import { call } from "../dsar/helpers";
import { countRows, requestLogged, type SeededOrg, seedOrg } from "./seed";

// The proof of an org deletion: an org with rows in every tenant table and an object in every bucket the
// system owns is deleted through the API and the Cron job's cascade; then no table (every column cast to
// text) and no bucket holds any id of the org or any of its users' identifiers or digests, the receipt's
// counts are the rows and objects there were, and a second org is unchanged, byte for byte. The lists
// of tables and buckets are the catalogue's and SYSTEM_BUCKETS: a table or bucket added without being
// covered fails here.
//
// The export half of issue 15: org A is exported right after seeding, each file's row count checked against
// the database, and the export's archive is then one more object the deletion erases.

const run = promisify(execFile);

let stack: Stack;
let maintenance: Db;
let exporter: Db;
beforeAll(async () => {
  stack = await startStack({ consumer: "recorder" });
  maintenance = createNodeDb(maintenanceRoleUrl(testDatabaseUrl()), 2);
  exporter = createNodeDb(roleUrl(testDatabaseUrl(), "layers_exporter"), 2);
});
afterAll(async () => {
  await maintenance?.destroy();
  await exporter?.destroy();
  await stack?.dispose();
});

/** Which store of the cascade each system bucket is: a bucket missing here is a bucket deletion misses. */
const BUCKET_STORES: Record<string, keyof LifecycleStores> = {
  [ARCHIVE_BUCKET]: "archive",
  [DEAD_LETTER_BUCKET]: "deadLetters",
  [MEDIA_BUCKET]: "media",
  [EXPORT_BUCKET]: "exports",
};

function stores(): Required<LifecycleStores> {
  return {
    archive: stack.s3.storage,
    deadLetters: stack.s3.deadLetters,
    media: stack.s3.media,
    exports: stack.s3.exports,
  };
}

async function bucketContents(): Promise<Record<string, { key: string; text: string }[]>> {
  const out: Record<string, { key: string; text: string }[]> = {};
  const all = stores();
  for (const bucket of SYSTEM_BUCKETS) {
    const store = all[BUCKET_STORES[bucket] as keyof LifecycleStores] as ObjectStore;
    out[bucket] = await objectTexts(store);
  }
  return out;
}

const ofOrg = (contents: Record<string, { key: string; text: string }[]>, org: SeededOrg) =>
  Object.fromEntries(
    Object.entries(contents).map(([bucket, objects]) => [
      bucket,
      objects.filter((o) => org.needles.some((n) => o.key.includes(n) || o.text.includes(n))),
    ]),
  );

test("every system bucket is one the cascade erases, and every tenant table is in its plan", async () => {
  expect(Object.keys(BUCKET_STORES).sort()).toEqual([...SYSTEM_BUCKETS].sort());
  const catalogue = await readCatalogue(stack.db);
  const { uncovered } = planSteps(catalogue, { kind: "org", orgId: "org_x" });
  expect(uncovered).toEqual([]);
});

test("an org with a row in every tenant table and an object in every bucket is erased completely", async () => {
  const a = await seedOrg(stack.db, stack.s3, "a");
  const b = await seedOrg(stack.db, stack.s3, "b");

  // Every tenant table (the catalogue's: an org_id column) holds a row of org A, so the scan below proves
  // something for each; a table added later without a row in seedOrg fails here.
  const catalogue = await readCatalogue(stack.db);
  const tenantTables = catalogue.tables
    .filter((t) => t.hasOrgId && t.name !== "org_deletions")
    .map((t) => t.name);
  const empty = tenantTables.filter((t) => (a.rows[t] ?? 0) === 0);
  expect(empty, "tenant tables seedOrg leaves empty: give each a row").toEqual([]);
  const beforeObjects = ofOrg(await bucketContents(), a);
  for (const bucket of SYSTEM_BUCKETS) {
    expect(beforeObjects[bucket]?.length, `an object of org A in ${bucket}`).toBeGreaterThan(0);
  }
  // Org B's anchors: the same needles before deletion must be found, or the scan proves nothing.
  expect((await findInTables(stack.db, [a.orgId, a.needles[3] as string])).length).toBeGreaterThan(0);

  // Org A exported first (issue 15), through the API and the Cron Worker's exporter: every file of the
  // manifest holds exactly the rows the database holds, and the archive it leaves in the export bucket is
  // one more object the deletion must erase.
  const owner = await addApiKey(stack.db, a.orgId, "owner");
  const exported = await exportOrg(a, owner.secret);
  const exportObjects = ofOrg(await bucketContents(), a)[EXPORT_BUCKET] ?? [];
  expect(exportObjects.map((o) => o.key).sort()).toEqual([...a.objects.exports, exported.objectKey].sort());

  const bRows = await orgSnapshot(stack.db, b.orgId);
  const bLogs = await stack.db.selectFrom("request_logs").selectAll().where("org_id", "=", b.orgId).execute();
  const bObjects = ofOrg(await bucketContents(), b);

  const asked = await call(stack, owner.secret, "DELETE", "/v1/org", { confirm: "Test org" });
  expect(asked.status, JSON.stringify(asked.body)).toBe(202);
  expect(asked.body.receiptToken).toMatch(/^odr_/);
  // Counted once the DELETE's own request-log row (written after the answer, in a batch) is stored.
  await requestLogged(stack.db, asked.headers.get("X-Request-Id"));
  const before = await countRows(stack.db, a.orgId, a.projectId);

  // Small batches: many runs' worth of steps, each resumed from the deletion row.
  let runs = 0;
  for (;;) {
    runs += 1;
    const { more } = await runDeletions(maintenance, "org", new Date(), {
      ...stores(),
      batchRows: 4,
      maxRowsPerRun: 40,
      maxObjectsPerRun: 3,
    });
    if (!more) break;
    expect(runs).toBeLessThan(200);
  }
  const state = await stack.db
    .selectFrom("org_deletions")
    .selectAll()
    .where("id", "=", asked.body.id)
    .executeTakeFirst();
  expect(runs, JSON.stringify(state)).toBeGreaterThan(2);

  const receipt = await fetchReceipt(asked.body.id, asked.body.receiptToken);
  expect(receipt.status).toBe(200);
  expect(receipt.body.status).toBe("completed");
  const expected: Record<string, number> = {};
  for (const [table, n] of Object.entries(before.all)) if (n > 0) expected[table] = n;
  expected["objects:media"] = 1;
  expected["objects:staging"] = 1;
  // The seeded export's object and the archive of the export above.
  expected["objects:exports"] = 2;
  expected["objects:archive"] = 1;
  expected["objects:dead_letters:events"] = 1;
  expected["objects:dead_letters:relay"] = 1;
  const got = Object.fromEntries(
    Object.entries(receipt.body.counts as Record<string, number>).filter(([, n]) => n > 0),
  );
  expect(got).toEqual(expected);

  // Nothing of org A anywhere: no row of any table (all columns as text), no object key or content.
  expect(await findInTables(stack.db, a.needles)).toEqual([]);
  const afterObjects = ofOrg(await bucketContents(), a);
  for (const bucket of SYSTEM_BUCKETS) expect(afterObjects[bucket], bucket).toEqual([]);

  // Org B exactly as it was.
  expect(await orgSnapshot(stack.db, b.orgId)).toEqual(bRows);
  expect(
    await stack.db.selectFrom("request_logs").selectAll().where("org_id", "=", b.orgId).execute(),
  ).toEqual(bLogs);
  expect(ofOrg(await bucketContents(), b)).toEqual(bObjects);
  expect((await findInTables(stack.db, [b.orgId])).length).toBeGreaterThan(0);
});

/**
 * Exports the org with events through POST /v1/org/exports, runs the exporter (as the Cron job does, as
 * layers_exporter, in small steps) until the job is done, reads the archive's manifest and checks every
 * file's row count against the database. Each step is advanced for this one export only: the Cron trigger
 * would also pick up exports other test files opened in the shared database.
 */
async function exportOrg(org: SeededOrg, secret: string): Promise<{ objectKey: string }> {
  const created = await call(stack, secret, "POST", "/v1/org/exports", { includeEvents: true });
  expect(created.status, JSON.stringify(created.body)).toBe(202);
  // The request's own log row is written by the API's batcher shortly after the answer: wait for it, so
  // the export and the counts below see the same request_logs.
  await requestLogged(stack.db, created.headers.get("X-Request-Id"));
  let now = Date.now();
  let result: { done: boolean; failed?: boolean } = { done: false };
  for (let runs = 0; !result.done; runs++) {
    expect(runs, "export steps").toBeLessThan(200);
    now += 61_000;
    result = await advanceExport(
      {
        db: exporter,
        exports: stack.s3.exports,
        archive: stack.s3.storage,
        media: stack.s3.media,
        now: new Date(now),
        limits: { ...DEFAULT_EXPORT_LIMITS, pageRows: 4, stepsPerRun: 7 },
      },
      created.body.id,
      org.orgId,
    );
  }
  expect(result.failed ?? false).toBe(false);
  const job = await stack.db
    .selectFrom("org_exports")
    .select(["status", "object_key"])
    .where("id", "=", created.body.id)
    .executeTakeFirstOrThrow();
  expect(job.status).toBe("succeeded");
  const objectKey = job.object_key as string;
  const bytes = await stack.s3.exports.get(objectKey);
  expect(bytes).not.toBeNull();

  const dir = await mkdtemp(path.join(tmpdir(), "layers-org-delete-export-"));
  try {
    await writeFile(path.join(dir, "archive.tar"), bytes as Uint8Array);
    await run("tar", ["-xf", "archive.tar"], { cwd: dir });
    const manifest = JSON.parse(await readFile(path.join(dir, "manifest.json"), "utf8")) as {
      orgId: string;
      files: { name: string; resource: string; rows: number }[];
      skipped: unknown[];
    };
    expect(manifest.orgId).toBe(org.orgId);
    expect(manifest.skipped).toEqual([]);
    const counts = await countRows(stack.db, org.orgId, org.projectId);
    const rowsOf = (name: string) => manifest.files.find((f) => f.resource === name)?.rows;
    for (const resource of EXPORT_RESOURCES) {
      let inDb = counts.all[resource.table] ?? 0;
      // The exporter audits the export's completion after the audit_log file was written.
      if (resource.table === "audit_log") inDb -= 1;
      expect(inDb, `${resource.table}: seedOrg gives it a row`).toBeGreaterThan(0);
      expect(rowsOf(resource.name), resource.name).toBe(inDb);
    }
    const archived = await stack.db
      .selectFrom("audit_archive_objects")
      .select((eb) => eb.fn.sum<string>("row_count").as("n"))
      .where("org_id", "=", org.orgId)
      .executeTakeFirstOrThrow();
    expect(rowsOf(COLD_AUDIT_FILE)).toBe(Number(archived.n));
    // Every tenant table is a file of the archive or excluded on purpose (the coverage test's rule, here
    // checked against what this archive actually holds).
    const excluded = new Set(Object.keys(EXCLUDED_TABLES));
    const tables = Object.keys(counts.all).filter((t) => !excluded.has(t));
    expect(tables.sort()).toEqual(EXPORT_RESOURCES.map((r) => r.table).sort());
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  return { objectKey };
}

async function fetchReceipt(id: string, token: string) {
  const response = await stack.api(`/v1/org-deletion-receipts/${id}`, {
    headers: { Authorization: `Bearer ${token}` },
  });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : null };
}
