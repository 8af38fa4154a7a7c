import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { purgeExpired } from "../../../functions/retention/purgeExpired";
import { maintenanceRoleUrl } from "../../../scripts/local/migrate";
import { createNodeDb } from "../../../scripts/local/node-db";
import { testDatabaseUrl } from "../../support/database";
import { type Stack, startStack } from "../../support/stack";
import { createTenant } from "../../support/tenant";
import { eventIds, insertEvent, lastJobLog, uniq } from "./fixtures";

// Hot-table retention through the real Cron Worker in workerd, as the maintenance role, with the clock
// injected as the trigger's scheduled time. Every class is checked on both sides of its boundary: a row
// strictly older than the limit goes, a row exactly at the limit stays.

const NOW = new Date("2031-06-15T12:00:00.000Z");
const DAY = 86_400_000;
const ago = (ms: number, now = NOW) => new Date(now.getTime() - ms);

let stack: Stack;
beforeAll(async () => {
  stack = await startStack({ consumer: "recorder" });
});
afterAll(() => stack?.dispose());

describe("sdk_events", () => {
  test("are removed once older than the default 400 days; the boundary instant stays", async () => {
    const t = await createTenant(stack.db);
    const expired = await insertEvent(stack.db, t, ago(400 * DAY + 1), "a-expired");
    const boundary = await insertEvent(stack.db, t, ago(400 * DAY), "b-boundary");
    const recent = await insertEvent(stack.db, t, ago(399 * DAY), "c-recent");
    expect(await eventIds(stack.db, t.projectId)).toEqual([expired, boundary, recent]);

    await stack.cron(NOW);
    expect(await eventIds(stack.db, t.projectId)).toEqual([boundary, recent]);
    const log = lastJobLog(stack, "retention");
    expect(log.msg).toBe("cron job done");
    expect(log.counts?.sdk_events).toBeGreaterThanOrEqual(1);
  });

  test("follow each project's own retention, down to the 30-day floor", async () => {
    const long = await createTenant(stack.db);
    const short = await createTenant(stack.db, { eventRetentionDays: 30 });
    const longOld = await insertEvent(stack.db, long, ago(31 * DAY), "long-31d");
    await insertEvent(stack.db, short, ago(30 * DAY + 1), "short-30d+1ms");
    const shortKept = await insertEvent(stack.db, short, ago(30 * DAY), "short-30d");

    await stack.cron(NOW);
    expect(await eventIds(stack.db, long.projectId)).toEqual([longOld]);
    expect(await eventIds(stack.db, short.projectId)).toEqual([shortKept]);
  });

  test("a change of a project's retention applies at the next run", async () => {
    const t = await createTenant(stack.db);
    const event = await insertEvent(stack.db, t, ago(100 * DAY), "hundred-days");
    await stack.cron(NOW);
    expect(await eventIds(stack.db, t.projectId)).toEqual([event]);

    await stack.db
      .updateTable("projects")
      .set({ event_retention_days: 90 })
      .where("id", "=", t.projectId)
      .execute();
    await stack.cron(NOW);
    expect(await eventIds(stack.db, t.projectId)).toEqual([]);
  });
});

describe("user state never outlives the events it came from", () => {
  async function userState(t: { orgId: string; projectId: string }, userId: string, lastSeen: Date) {
    await stack.db
      .insertInto("sdk_users")
      .values({
        org_id: t.orgId,
        project_id: t.projectId,
        user_id: userId,
        properties: JSON.stringify({ plan: "pro" }),
        property_times: JSON.stringify({ plan: lastSeen.getTime() }),
        first_seen_at: ago(500 * DAY),
        last_seen_at: lastSeen,
        email_sha256: "a".repeat(64),
        email_sha256_at: lastSeen,
      })
      .execute();
  }
  async function attribution(t: { orgId: string; projectId: string }, userId: string, at: Date) {
    await stack.db
      .insertInto("apple_attributions")
      .values({
        org_id: t.orgId,
        project_id: t.projectId,
        user_id: userId,
        event_id: uniq("evt"),
        attribution: true,
        campaign_id: 42,
        attributed_at: at,
      })
      .execute();
  }
  const users = async (projectId: string) =>
    (
      await stack.db
        .selectFrom("sdk_users")
        .select("user_id")
        .where("project_id", "=", projectId)
        .orderBy("user_id")
        .execute()
    ).map((r) => r.user_id);
  const attributed = async (projectId: string) =>
    (
      await stack.db
        .selectFrom("apple_attributions")
        .select("user_id")
        .where("project_id", "=", projectId)
        .orderBy("user_id")
        .execute()
    ).map((r) => r.user_id);

  test("a user whose newest event is past the project's retention goes, with their Apple attribution", async () => {
    const t = await createTenant(stack.db, { eventRetentionDays: 90 });
    await userState(t, "gone", ago(90 * DAY + 1));
    await attribution(t, "gone", ago(10 * DAY)); // recent, but its user's state is gone
    await userState(t, "boundary", ago(90 * DAY));
    await attribution(t, "boundary", ago(90 * DAY + 1)); // recorded before the window: goes on its own
    await userState(t, "active", ago(DAY));
    await attribution(t, "active", ago(DAY));

    await stack.cron(NOW);
    expect(await users(t.projectId)).toEqual(["active", "boundary"]);
    expect(await attributed(t.projectId)).toEqual(["active"]);
    const log = lastJobLog(stack, "retention");
    expect(log.counts?.sdk_users).toBeGreaterThanOrEqual(1);
    expect(log.counts?.apple_attributions).toBeGreaterThanOrEqual(2);
  });

  test("events and state leave together: after the run nothing of an expired user remains", async () => {
    const t = await createTenant(stack.db);
    await insertEvent(stack.db, t, ago(401 * DAY), "old-only");
    await userState(t, "user-1", ago(401 * DAY));
    await stack.cron(NOW);
    expect(await eventIds(stack.db, t.projectId)).toEqual([]);
    expect(await users(t.projectId)).toEqual([]);
  });
});

test("event_daily_counts are removed once their day is more than 2 years old", async () => {
  const t = await createTenant(stack.db);
  // Two years before 2031-06-15 is 2029-06-15: that day stays, the day before goes.
  for (const day of ["2029-06-14", "2029-06-15", "2029-06-16"]) {
    await stack.db
      .insertInto("event_daily_counts")
      .values({
        org_id: t.orgId,
        project_id: t.projectId,
        day,
        event_name: "purchase",
        country: "DE",
        count: 3,
      })
      .execute();
  }
  await stack.cron(NOW);
  const days = await stack.db
    .selectFrom("event_daily_counts")
    .select((eb) => eb.fn<string>("to_char", [eb.ref("day"), eb.val("YYYY-MM-DD")]).as("day"))
    .where("project_id", "=", t.projectId)
    .orderBy("day")
    .execute();
  expect(days.map((d) => d.day)).toEqual(["2029-06-15", "2029-06-16"]);
  expect(lastJobLog(stack, "retention").counts?.event_daily_counts).toBeGreaterThanOrEqual(1);
});

test("request logs are removed once older than 30 days", async () => {
  const t = await createTenant(stack.db);
  const row = (requestId: string, occurredAt: Date) => ({
    request_id: requestId,
    org_id: t.orgId,
    api_key_id: "key_test",
    method: "GET",
    route: "/v1/projects",
    status: 200,
    latency_ms: 5,
    occurred_at: occurredAt,
  });
  await stack.db
    .insertInto("request_logs")
    .values([row("req_old", ago(30 * DAY + 1)), row("req_boundary", ago(30 * DAY)), row("req_new", ago(DAY))])
    .execute();
  await stack.cron(NOW);
  const left = await stack.db
    .selectFrom("request_logs")
    .select("request_id")
    .where("org_id", "=", t.orgId)
    .orderBy("request_id")
    .execute();
  expect(left.map((r) => r.request_id)).toEqual(["req_boundary", "req_new"]);
  expect(lastJobLog(stack, "retention").counts?.request_logs).toBeGreaterThanOrEqual(1);
});

test("idempotency records are removed once older than 24 hours, in progress or completed", async () => {
  const t = await createTenant(stack.db);
  const row = (key: string, createdAt: Date, state: "in_progress" | "completed") => ({
    org_id: t.orgId,
    api_key_id: "key_retentionTest",
    idempotency_key: key,
    request_sha256: "0".repeat(64),
    state,
    response_status: state === "completed" ? 201 : null,
    response_body: state === "completed" ? "{}" : null,
    created_at: createdAt,
    completed_at: state === "completed" ? createdAt : null,
  });
  await stack.db
    .insertInto("idempotency_keys")
    .values([
      row("old-done", ago(24 * 3_600_000 + 1), "completed"),
      row("old-stuck", ago(25 * 3_600_000), "in_progress"),
      row("boundary", ago(24 * 3_600_000), "completed"),
      row("fresh", ago(60_000), "completed"),
    ])
    .execute();
  await stack.cron(NOW);
  const left = await stack.db
    .selectFrom("idempotency_keys")
    .select("idempotency_key")
    .where("org_id", "=", t.orgId)
    .orderBy("idempotency_key")
    .execute();
  expect(left.map((r) => r.idempotency_key)).toEqual(["boundary", "fresh"]);
  expect(lastJobLog(stack, "retention").counts?.idempotency_keys).toBeGreaterThanOrEqual(2);
});

test("a run does at most its row budget; the runs after it finish the job", async () => {
  // Run from Node with tiny limits, as the maintenance role, so the budget is visible in a few rows.
  // `now` is the real clock here: only rows this test dates back are expired.
  const maintenance = createNodeDb(maintenanceRoleUrl(testDatabaseUrl()), 1);
  try {
    const now = new Date();
    const t = await createTenant(stack.db, { eventRetentionDays: 30 });
    const doomed: string[] = [];
    for (let i = 0; i < 23; i++)
      doomed.push(await insertEvent(stack.db, t, ago(40 * DAY + i, now), uniq("old")));
    const kept = await insertEvent(stack.db, t, ago(DAY, now), "kept");

    const limits = { chunkSize: 4, rowBudget: 10 };
    let runs = 0;
    for (;;) {
      const result = await purgeExpired(maintenance, now, limits);
      runs += 1;
      expect(result.counts.sdk_events).toBeLessThanOrEqual(limits.rowBudget);
      const left = await eventIds(stack.db, t.projectId);
      if (left.length === 1) break;
      // Rows remain, so this run must have stopped on its budget and said so.
      expect(result.more).toBe(true);
      expect(runs).toBeLessThan(200);
    }
    expect(runs).toBeGreaterThanOrEqual(3);
    expect(await eventIds(stack.db, t.projectId)).toEqual([kept]);
  } finally {
    await maintenance.destroy();
  }
});

test("a run with the database unreachable fails, loses nothing, and the next run finishes the job", async () => {
  const t = await createTenant(stack.db);
  const expired = await insertEvent(stack.db, t, ago(401 * DAY), "expired");
  const kept = await insertEvent(stack.db, t, ago(DAY), "kept");

  await stack.stopBridge();
  try {
    const outcome = await stack.cron(NOW);
    expect(outcome.outcome).not.toBe("ok");
    expect(lastJobLog(stack, "retention").msg).toBe("cron job failed");
  } finally {
    await stack.restartBridge();
  }
  expect(await eventIds(stack.db, t.projectId)).toEqual([expired, kept]);

  await stack.cron(NOW);
  expect(lastJobLog(stack, "retention").msg).toBe("cron job done");
  expect(await eventIds(stack.db, t.projectId)).toEqual([kept]);
});
