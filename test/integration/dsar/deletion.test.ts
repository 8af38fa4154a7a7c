import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { executeDeletions } from "../../../functions/deletionRequests/executeDeletions";
import { persistEvents } from "../../../functions/events/persistEvents";
import { maintenanceRoleUrl } from "../../../scripts/local/migrate";
import { createNodeDb } from "../../../scripts/local/node-db";
import { sha256Hex } from "../../../shared/hash";
import { testDatabaseUrl } from "../../support/database";
import { eventsMessage, queuedEvent } from "../../support/messages";
import { describeRouteSecurity } from "../../support/routeSecurity";
import { waitForEvents } from "../../support/rows";
import { type Stack, startStack } from "../../support/stack";
import { createTenant, type TestTenant } from "../../support/tenant";
import { auditActions, call, expectNoPlaintext, ownerKey, runCron, snapshot } from "./helpers";

// Deletion end to end: ingest → DELETE → Cron run → nothing of the user left in any table, the receipt's
// counts right, the aggregates unchanged, audit rows for the request and its completion.

let stack: Stack;
beforeAll(async () => {
  stack = await startStack();
});
afterAll(() => stack?.dispose());

const minutesFromNow = (m: number) => new Date(Date.now() + m * 60_000);

async function ingestUsers(t: TestTenant) {
  const events = [
    ...Array.from({ length: 30 }, (_, i) => ({
      eventId: `alice-${i}`,
      name: i % 2 ? "view" : "purchase",
      userId: "alice",
      ...(i === 0 ? { email: "Alice@Example.com", phone: "+44 20 7946 0000" } : {}),
      properties: { plan: "pro", i },
    })),
    ...Array.from({ length: 12 }, (_, i) => ({ eventId: `bob-${i}`, name: "view", userId: "bob" })),
    // An anonymous event carrying alice's email: matched by hash only.
    { eventId: "anon-email", name: "signup", email: "alice@example.com" },
  ];
  expect((await stack.ingest({ events }, { key: t.sdkKey })).status).toBe(202);
  await waitForEvents(stack.db, t.projectId, events.length);
}

describe("DELETE /v1/projects/:projectId/events/users/:userId", () => {
  test("ingest → delete → cron: the user is gone everywhere, aggregates stay, receipt and audit rows exist", async () => {
    const t = await createTenant(stack.db);
    const secret = await ownerKey(stack, t, "admin");
    await ingestUsers(t);
    const before = await snapshot(stack, t, "alice");
    expect(before.userEvents).toBe(30);
    expect(before.user).toBe(true);

    const created = await call(stack, secret, "DELETE", `/v1/projects/${t.projectId}/events/users/alice`);
    expect(created.status).toBe(202);
    expect(created.body).toMatchObject({
      object: "deletion_request",
      projectId: t.projectId,
      status: "pending",
      suppress: false,
      subject: { userIdSha256: await sha256Hex("alice"), emailSha256: null, phoneSha256: null },
      deleted: { events: 0, users: 0 },
      startedAt: null,
      finishedAt: null,
    });
    expect(JSON.stringify(created.body)).not.toContain('"alice"');
    const id: string = created.body.id;

    // Nothing happens before the Cron run; the receipt says pending.
    expect((await call(stack, secret, "GET", `/v1/deletion-requests/${id}`)).body.status).toBe("pending");
    expect((await snapshot(stack, t, "alice")).userEvents).toBe(30);

    const runAt = minutesFromNow(5);
    await runCron(stack, runAt);

    const after = await snapshot(stack, t, "alice");
    expect(after.userEvents).toBe(0);
    expect(after.user).toBe(false);
    expect(after.otherEvents).toBe(before.otherEvents); // bob and the anonymous event stay
    expect(after.otherUsers).toBe(before.otherUsers);
    expect(after.counts).toEqual(before.counts);

    const receipt = await call(stack, secret, "GET", `/v1/deletion-requests/${id}`);
    expect(receipt.body).toMatchObject({
      status: "completed",
      deleted: { events: 30, users: 1 },
      finishedAt: runAt.toISOString(),
      receiptExpiresAt: new Date(runAt.getTime() + 730 * 86_400_000).toISOString(),
    });
    expect(receipt.body.startedAt).toBe(runAt.toISOString());
    // The plaintext user id is cleared once the request ends; the receipt keeps digests only.
    const row = await stack.db
      .selectFrom("deletion_requests")
      .select(["user_id", "user_id_sha256"])
      .where("id", "=", id)
      .executeTakeFirstOrThrow();
    expect(row).toEqual({ user_id: null, user_id_sha256: await sha256Hex("alice") });
    expect(await auditActions(stack, t, id)).toEqual([
      "deletion_request.created",
      "deletion_request.completed",
    ]);

    // The access endpoint agrees: nothing held.
    const access = await call(stack, secret, "GET", `/v1/projects/${t.projectId}/events/users/alice`);
    expect(access.body).toMatchObject({ user: null, events: { data: [], hasMore: false } });

    // A second run has nothing left to do and changes nothing.
    await runCron(stack, minutesFromNow(10));
    expect((await call(stack, secret, "GET", `/v1/deletion-requests/${id}`)).body.deleted).toEqual({
      events: 30,
      users: 1,
      attributions: 0,
      deadLetters: 0,
      deadLetteredEvents: 0,
    });
  });

  test("asking twice while pending returns the same request; a new one after completion is a new request", async () => {
    const t = await createTenant(stack.db);
    const secret = await ownerKey(stack, t, "admin");
    const path = `/v1/projects/${t.projectId}/events/users/carol`;
    const first = await call(stack, secret, "DELETE", path);
    const second = await call(stack, secret, "DELETE", `${path}?suppress=true`);
    expect(second.status).toBe(202);
    expect(second.body.id).toBe(first.body.id);
    expect(second.body.suppress).toBe(true); // suppression is sticky
    const open = await stack.db
      .selectFrom("deletion_requests")
      .select("id")
      .where("project_id", "=", t.projectId)
      .execute();
    expect(open).toHaveLength(1);
    await runCron(stack, minutesFromNow(5));
    const third = await call(stack, secret, "DELETE", path);
    expect(third.body.id).not.toBe(first.body.id);
    expect(third.body.status).toBe("pending");
  });

  test("an Idempotency-Key replays the first answer", async () => {
    const t = await createTenant(stack.db);
    const secret = await ownerKey(stack, t, "admin");
    const path = `/v1/projects/${t.projectId}/events/users/dave`;
    const first = await call(stack, secret, "DELETE", path, undefined, { "Idempotency-Key": "del-dave-1" });
    const replay = await call(stack, secret, "DELETE", path, undefined, { "Idempotency-Key": "del-dave-1" });
    expect(replay.headers.get("Idempotent-Replayed")).toBe("true");
    expect(replay.body).toEqual(first.body);
  });

  test("deletion by email: events carrying the hash and users whose state holds it are erased", async () => {
    const t = await createTenant(stack.db);
    const secret = await ownerKey(stack, t, "admin");
    await ingestUsers(t);
    const before = await snapshot(stack, t, "alice");
    const created = await call(stack, secret, "POST", `/v1/projects/${t.projectId}/deletion-requests`, {
      email: "  ALICE@example.com ",
    });
    expect(created.status).toBe(202);
    expect(created.body.subject).toEqual({
      userIdSha256: null,
      emailSha256: await sha256Hex("alice@example.com"),
      phoneSha256: null,
    });
    await runCron(stack, minutesFromNow(5));
    const receipt = await call(stack, secret, "GET", `/v1/deletion-requests/${created.body.id}`);
    // alice-0 and the anonymous event carried the email; alice's state row held it as her latest email.
    expect(receipt.body).toMatchObject({ status: "completed", deleted: { events: 2, users: 1 } });
    const after = await snapshot(stack, t, "alice");
    expect(after.user).toBe(false);
    expect(after.userEvents).toBe(29);
    expect(after.otherEvents).toBe(before.otherEvents - 1);
    expect(after.counts).toEqual(before.counts);
    const stored = JSON.stringify(
      await stack.db.selectFrom("deletion_requests").selectAll().where("id", "=", created.body.id).execute(),
    );
    expect(stored.toLowerCase()).not.toContain("alice@example.com");
    // The raw address of the request reaches no log line and no other table either.
    await new Promise((resolve) => setTimeout(resolve, 300)); // request-log rows are written after the answer
    const kept = JSON.stringify([
      await stack.db.selectFrom("audit_log").selectAll().where("org_id", "=", t.orgId).execute(),
      await stack.db.selectFrom("request_logs").selectAll().where("org_id", "=", t.orgId).execute(),
      await stack.db.selectFrom("suppressions").selectAll().where("org_id", "=", t.orgId).execute(),
    ]);
    expectNoPlaintext(stack.logs.join("\n"), ["ALICE@example.com"]);
    expectNoPlaintext(kept.toLowerCase(), ["alice@example.com"]);
  });

  test("bad input is a 400 with a stable code and stores nothing", async () => {
    const t = await createTenant(stack.db);
    const secret = await ownerKey(stack, t, "admin");
    for (const body of [
      {},
      { emailSha256: "abc" },
      { email: "a@b.c", emailSha256: "a".repeat(64) },
      { userId: "x", extra: 1 },
    ]) {
      const r = await call(stack, secret, "POST", `/v1/projects/${t.projectId}/deletion-requests`, body);
      expect(r.status, JSON.stringify(body)).toBe(400);
      expect(r.body.error.code).toBe("invalid_request");
    }
    const longId = "u".repeat(257);
    expect(
      (await call(stack, secret, "DELETE", `/v1/projects/${t.projectId}/events/users/${longId}`)).status,
    ).toBe(400);
    expect(
      (await call(stack, secret, "DELETE", `/v1/projects/${t.projectId}/events/users/x?suppress=yes`)).status,
    ).toBe(400);
    expect(
      await stack.db
        .selectFrom("deletion_requests")
        .select("id")
        .where("project_id", "=", t.projectId)
        .execute(),
    ).toEqual([]);
  });
});

// Every data-subject route (access, lookup, deletion, receipts, suppressions): 401 for missing, bad, revoked,
// rotated-out and expired keys, 403 for each role below the route's (deleting and lifting need admin,
// reading needs developer), 404 for another org's or another project's ids, and nothing changed.
describeRouteSecurity(() => stack, "Data-subject requests");

describe("roles, tenancy and listing", () => {
  test("a project-restricted key sees only its project's requests", async () => {
    const t = await createTenant(stack.db);
    const admin = await ownerKey(stack, t, "admin");
    const second = await call(stack, admin, "POST", "/v1/projects", { name: "second" });
    const restricted = await ownerKey(stack, t, "admin", second.body.id);
    await call(stack, admin, "DELETE", `/v1/projects/${t.projectId}/events/users/f`);
    const inSecond = await call(stack, restricted, "DELETE", `/v1/projects/${second.body.id}/events/users/f`);
    expect(inSecond.status).toBe(202);
    const listed = await call(stack, restricted, "GET", "/v1/deletion-requests");
    expect(listed.body.data.map((r: { id: string }) => r.id)).toEqual([inSecond.body.id]);
  });

  test("list: newest first, filter by status, cursor pagination", async () => {
    const t = await createTenant(stack.db);
    const admin = await ownerKey(stack, t, "admin");
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      const r = await call(
        stack,
        admin,
        "DELETE",
        `/v1/projects/${t.projectId}/events/users/list-${i}`,
        undefined,
        {
          "X-Layers-Test-Now": new Date(Date.UTC(2026, 0, 1, 0, i)).toISOString(),
        },
      );
      ids.push(r.body.id);
    }
    await runCron(stack, new Date(Date.UTC(2026, 0, 1, 0, 0, 30))); // only the first was requested by then
    const pending = await call(stack, admin, "GET", "/v1/deletion-requests?status=pending&limit=1");
    expect(pending.body.data.map((r: { id: string }) => r.id)).toEqual([ids[2]]);
    expect(pending.body.hasMore).toBe(true);
    const next = await call(
      stack,
      admin,
      "GET",
      `/v1/deletion-requests?status=pending&limit=1&starting_after=${pending.body.nextCursor}`,
    );
    expect(next.body.data.map((r: { id: string }) => r.id)).toEqual([ids[1]]);
    expect(next.body.hasMore).toBe(false);
    const completed = await call(stack, admin, "GET", "/v1/deletion-requests?status=completed");
    expect(completed.body.data.map((r: { id: string }) => r.id)).toEqual([ids[0]]);
    expect((await call(stack, admin, "GET", "/v1/deletion-requests?status=done")).status).toBe(400);
  });
});

describe("the executor", () => {
  test("bounded batches: a run cut short resumes with exact counts", async () => {
    const t = await createTenant(stack.db);
    const admin = await ownerKey(stack, t, "admin");
    const events = Array.from({ length: 250 }, (_, i) =>
      queuedEvent({ eventId: `b-${i}`, userId: "batchy", name: "view" }),
    );
    await persistEvents(
      stack.db,
      eventsMessage(t, events, { receivedAt: new Date(Date.now() - 60_000).toISOString() }),
    );
    const created = await call(stack, admin, "DELETE", `/v1/projects/${t.projectId}/events/users/batchy`);
    const maintenance = createNodeDb(maintenanceRoleUrl(testDatabaseUrl()), 1);
    try {
      const now = minutesFromNow(5);
      // Other tests' open requests may be picked up too; only this request's receipt is asserted.
      const first = await executeDeletions(maintenance, now, { batchRows: 40, maxRowsPerRun: 100 });
      expect(first.more).toBe(true);
      let receipt = await call(stack, admin, "GET", `/v1/deletion-requests/${created.body.id}`);
      expect(receipt.body.status).toBe("running");
      expect(receipt.body.deleted.events).toBeGreaterThan(0);
      for (let i = 0; i < 20 && receipt.body.status !== "completed"; i++) {
        await executeDeletions(maintenance, now, { batchRows: 40, maxRowsPerRun: 100 });
        receipt = await call(stack, admin, "GET", `/v1/deletion-requests/${created.body.id}`);
      }
      expect(receipt.body).toMatchObject({ status: "completed", deleted: { events: 250, users: 1 } });
      expect((await snapshot(stack, t, "batchy")).userEvents).toBe(0);
    } finally {
      await maintenance.destroy();
    }
  });
});
