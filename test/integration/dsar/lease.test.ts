import { sql } from "kysely";
import { afterAll, beforeAll, expect, test } from "vitest";
import { executeDeletions, LEASE_MS } from "../../../functions/deletionRequests/executeDeletions";
import { persistEvents } from "../../../functions/events/persistEvents";
import { maintenanceRoleUrl } from "../../../scripts/local/migrate";
import { createNodeDb } from "../../../scripts/local/node-db";
import type { Db } from "../../../shared/db";
import { testDatabaseUrl } from "../../support/database";
import { eventsMessage, queuedEvent } from "../../support/messages";
import { type Stack, startStack, waitFor } from "../../support/stack";
import { createTenant } from "../../support/tenant";
import { auditActions, call, ownerKey, snapshot } from "./helpers";

// Cron runs can overlap (a slow run is still working when the next one starts). A running request belongs
// to the run that claimed it until its lease (last progress + LEASE_MS) expires, and a request completes
// once: one completion, one audit row, counts not doubled.

let stack: Stack;
let maintenance: Db;
beforeAll(async () => {
  stack = await startStack({ consumer: "recorder" });
  maintenance = createNodeDb(maintenanceRoleUrl(testDatabaseUrl()), 2);
});
afterAll(async () => {
  await maintenance?.destroy();
  await stack?.dispose();
});

const T = new Date(Date.now() + 5 * 60_000);
const at = (ms: number) => new Date(T.getTime() + ms);

async function requestFor(userId: string, events: number) {
  const t = await createTenant(stack.db);
  const admin = await ownerKey(stack, t, "admin");
  await persistEvents(
    stack.db,
    eventsMessage(
      t,
      Array.from({ length: events }, (_, i) => queuedEvent({ eventId: `${userId}-${i}`, userId })),
      { receivedAt: new Date(Date.now() - 60_000).toISOString() },
    ),
  );
  const created = await call(stack, admin, "DELETE", `/v1/projects/${t.projectId}/events/users/${userId}`);
  expect(created.status).toBe(202);
  const receipt = async () =>
    (await call(stack, admin, "GET", `/v1/deletion-requests/${created.body.id}`)).body;
  return { t, id: created.body.id as string, receipt };
}

test("a request held by a run that died is taken over only after the lease expires", async () => {
  const { t, id, receipt } = await requestFor("leased", 3);
  // The state a run leaves when it dies after its claim: running, last progress at T.
  await stack.db
    .updateTable("deletion_requests")
    .set({ status: "running", started_at: T, heartbeat_at: T })
    .where("id", "=", id)
    .execute();

  await executeDeletions(maintenance, at(LEASE_MS / 2));
  expect((await receipt()).status).toBe("running");
  expect((await snapshot(stack, t, "leased")).userEvents).toBe(3);

  await executeDeletions(maintenance, at(LEASE_MS + 1));
  expect(await receipt()).toMatchObject({ status: "completed", deleted: { events: 3, users: 1 } });
  expect(await auditActions(stack, t, id)).toEqual([
    "deletion_request.created",
    "deletion_request.completed",
  ]);
});

test("a run that stops on its budget releases the request: the next run resumes it at once", async () => {
  const { id, receipt } = await requestFor("budget", 30);
  // Other files' open requests may be taken by these runs too; only this request is asserted.
  for (let i = 0; i < 20 && (await receipt()).status !== "completed"; i++) {
    await executeDeletions(maintenance, T, { batchRows: 10, maxRowsPerRun: 10 });
  }
  expect(await receipt()).toMatchObject({ status: "completed", deleted: { events: 30, users: 1 } });
  const row = await stack.db
    .selectFrom("deletion_requests")
    .select("heartbeat_at")
    .where("id", "=", id)
    .executeTakeFirstOrThrow();
  expect(row.heartbeat_at).toBeNull();
});

// Needs two sessions at once (one blocked on a lock), which the embedded PGlite cannot give.
test.runIf(Boolean(process.env.TEST_DATABASE_URL))(
  "two overlapping runs complete a request once: one completion audit row",
  async () => {
    const { t, id, receipt } = await requestFor("overlap", 4);
    const owner = createNodeDb(testDatabaseUrl(), 2);
    let release = () => {};
    const released = new Promise<void>((resolve) => {
      release = resolve;
    });
    let locked = () => {};
    const isLocked = new Promise<void>((resolve) => {
      locked = resolve;
    });
    // Holding the user's state row keeps the first run inside its completion step.
    const holder = owner.transaction().execute(async (tx) => {
      await tx
        .selectFrom("sdk_users")
        .select("user_id")
        .where("project_id", "=", t.projectId)
        .where("user_id", "=", "overlap")
        .forUpdate()
        .execute();
      locked();
      await released;
    });
    await isLocked;
    const waitingOnLocks = async () => {
      const { rows } = await sql<{ n: string }>`
        select count(*) as n from pg_stat_activity
        where wait_event_type = 'Lock' and query ilike '%sdk_users%'
      `.execute(owner);
      return Number(rows[0]?.n ?? 0);
    };
    try {
      const first = executeDeletions(maintenance, T);
      await waitFor(async () => ((await waitingOnLocks()) >= 1 ? true : undefined));
      // The second run starts a minute later by its clock, while the first still holds the request. It must
      // leave the request alone; were it to take it, it would end up waiting on the same lock.
      let secondDone = false;
      const second = executeDeletions(maintenance, at(60_000)).finally(() => {
        secondDone = true;
      });
      await waitFor(async () => (secondDone || (await waitingOnLocks()) >= 2 ? true : undefined));
      release();
      await Promise.all([first, second]);
    } finally {
      release();
      await holder;
      await owner.destroy();
    }
    expect(await receipt()).toMatchObject({ status: "completed", deleted: { events: 4, users: 1 } });
    expect(await auditActions(stack, t, id)).toEqual([
      "deletion_request.created",
      "deletion_request.completed",
    ]);
  },
);
