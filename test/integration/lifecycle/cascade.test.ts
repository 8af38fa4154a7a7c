import { afterAll, beforeAll, expect, test } from "vitest";
import { CASCADE_LEASE_MS, runDeletions } from "../../../functions/lifecycle/cascade";
import { maintenanceRoleUrl } from "../../../scripts/local/migrate";
import { createNodeDb } from "../../../scripts/local/node-db";
import type { Db } from "../../../shared/db";
import { addApiKey } from "../../support/apiTenant";
import { testDatabaseUrl } from "../../support/database";
import { findInTables } from "../../support/scan";
import { type Stack, startStack } from "../../support/stack";
import { call } from "../dsar/helpers";
import { countRows, requestLogged, type SeededOrg, seedOrg } from "./seed";

// The cascade under failure and overlap: a run that dies mid-way leaves a deletion another run resumes
// (after the lease, if it died holding it) and finishes with exact counts; two runs at once never work
// on the same deletion, and no count is doubled.

let stack: Stack;
let maintenance: Db;
let second: Db;
beforeAll(async () => {
  stack = await startStack({ consumer: "recorder" });
  maintenance = createNodeDb(maintenanceRoleUrl(testDatabaseUrl()), 2);
  second = createNodeDb(maintenanceRoleUrl(testDatabaseUrl()), 2);
});
afterAll(async () => {
  await maintenance?.destroy();
  await second?.destroy();
  await stack?.dispose();
});

const stores = () => ({
  archive: stack.s3.storage,
  deadLetters: stack.s3.deadLetters,
  media: stack.s3.media,
  exports: stack.s3.exports,
});

/** Seeds an org, asks for its deletion through the API; returns the receipt id and the rows to expect. */
async function deletionOf(
  label: string,
): Promise<{ org: SeededOrg; id: string; expected: Record<string, number> }> {
  const org = await seedOrg(stack.db, stack.s3, label);
  const owner = await addApiKey(stack.db, org.orgId, "owner");
  const asked = await call(stack, owner.secret, "DELETE", "/v1/org", { confirm: "Test org" });
  expect(asked.status).toBe(202);
  // The DELETE's own request-log row (of this org) lands shortly after the answer: count once it is there,
  // or `expected` misses the row the cascade then erases (request_logs 2 against 1).
  await requestLogged(stack.db, asked.headers.get("X-Request-Id"));
  const before = await countRows(stack.db, org.orgId, org.projectId);
  const expected: Record<string, number> = {};
  for (const [table, n] of Object.entries(before.all)) if (n > 0) expected[table] = n;
  for (const cls of ["media", "staging", "exports", "archive", "dead_letters:events", "dead_letters:relay"]) {
    expected[`objects:${cls}`] = 1;
  }
  return { org, id: asked.body.id, expected };
}

async function row(id: string) {
  return stack.db.selectFrom("org_deletions").selectAll().where("id", "=", id).executeTakeFirstOrThrow();
}

const positive = (counts: unknown) =>
  Object.fromEntries(Object.entries(counts as Record<string, number>).filter(([, n]) => Number(n) > 0));

/** Runs until `id` completes (other files' open deletions may be worked on too; only `id` is asserted). */
async function finish(db: Db, id: string, now = new Date()) {
  for (let i = 0; i < 100 && (await row(id)).status !== "completed"; i++) {
    await runDeletions(db, "org", now, { ...stores(), batchRows: 3, maxRowsPerRun: 30 });
  }
}

test("a run cut short mid-cascade is resumed by the next run, which finishes with exact counts", async () => {
  const { org, id, expected } = await deletionOf("ca");
  let batches = 0;
  const crash = new Error("worker died");
  const cut = await runDeletions(maintenance, "org", new Date(), {
    ...stores(),
    batchRows: 3,
    afterBatch: ({ deletionId }) => {
      if (deletionId === id && ++batches === 12) throw crash;
    },
  });
  expect(cut.more).toBe(true);
  const mid = await row(id);
  expect(mid.status).toBe("running");
  expect(mid.attempts).toBe(1);
  expect(mid.heartbeat_at).toBeNull(); // released: the next run resumes at once
  const partial = Object.values(mid.counts as Record<string, number>).reduce((x, y) => x + Number(y), 0);
  expect(partial).toBeGreaterThan(0);

  await finish(maintenance, id);
  const done = await row(id);
  expect(done.status).toBe("completed");
  expect(positive(done.counts)).toEqual(expected);
  expect(await findInTables(stack.db, org.needles)).toEqual([]);
});

test("a deletion held by a run that died is taken over only after the lease, then finished once", async () => {
  const { org, id, expected } = await deletionOf("cb");
  // The state a run leaves when it dies after some batches: running, progress recorded, heartbeat set.
  let batches = 0;
  await runDeletions(maintenance, "org", new Date(), {
    ...stores(),
    batchRows: 3,
    afterBatch: ({ deletionId }) => {
      if (deletionId === id && ++batches === 8) throw new Error("cut");
    },
  });
  const t = new Date(Date.now() + 60_000);
  await stack.db.updateTable("org_deletions").set({ heartbeat_at: t }).where("id", "=", id).execute();
  const held = await row(id);

  await runDeletions(maintenance, "org", new Date(t.getTime() + CASCADE_LEASE_MS / 2), stores());
  expect((await row(id)).counts).toEqual(held.counts);

  await finish(maintenance, id, new Date(t.getTime() + CASCADE_LEASE_MS + 1));
  const done = await row(id);
  expect(done.status).toBe("completed");
  expect(positive(done.counts)).toEqual(expected);
  expect(await findInTables(stack.db, org.needles)).toEqual([]);
});

test("two Cron runs at once never work on one deletion together, and no count is doubled", async () => {
  const first = await deletionOf("cc");
  const secondOrg = await deletionOf("cd");
  for (let i = 0; i < 100; i++) {
    const [a, b] = await Promise.all([
      runDeletions(maintenance, "org", new Date(), { ...stores(), batchRows: 2, maxRowsPerRun: 20 }),
      runDeletions(second, "org", new Date(), { ...stores(), batchRows: 2, maxRowsPerRun: 20 }),
    ]);
    if ((await row(first.id)).status === "completed" && (await row(secondOrg.id)).status === "completed")
      break;
    expect(a.counts.deletions_failed_runs ?? 0).toBe(0);
    expect(b.counts.deletions_failed_runs ?? 0).toBe(0);
  }
  for (const d of [first, secondOrg]) {
    const done = await row(d.id);
    expect(done.status).toBe("completed");
    expect(positive(done.counts)).toEqual(d.expected);
    expect(await findInTables(stack.db, d.org.needles)).toEqual([]);
  }
});
