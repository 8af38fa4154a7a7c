import { afterAll, beforeAll, expect, test } from "vitest";
import { sha256Hex } from "../../../shared/hash";
import { waitForEvents } from "../../support/rows";
import { type Stack, startStack, waitFor } from "../../support/stack";
import { createTenant } from "../../support/tenant";
import { auditActions, call, ownerKey, runCron, snapshot } from "./helpers";

// Suppression: `suppress` keeps a digest of the identifier so later events for it are dropped at ingest
// (by the consumer, before anything is stored) until the partner lifts it.

let stack: Stack;
beforeAll(async () => {
  stack = await startStack();
});
afterAll(() => stack?.dispose());

/** Ingests a batch and waits until the consumer has handled it (stored or dropped). */
async function ingestAndSettle(key: string, projectId: string, events: unknown[]) {
  const mark = stack.logs.length;
  expect((await stack.ingest({ events }, { key })).status).toBe(202);
  await waitFor(async () =>
    stack.logs.slice(mark).some((l) => l.includes("events persisted") && l.includes(projectId))
      ? true
      : undefined,
  );
}

test("a suppressed user's later events are dropped until the suppression is lifted", async () => {
  const t = await createTenant(stack.db);
  const admin = await ownerKey(stack, t, "admin");
  await ingestAndSettle(t.sdkKey, t.projectId, [{ eventId: "g0", name: "view", userId: "ghost" }]);

  const created = await call(
    stack,
    admin,
    "DELETE",
    `/v1/projects/${t.projectId}/events/users/ghost?suppress=true`,
  );
  expect(created.body).toMatchObject({ status: "pending", suppress: true });
  await runCron(stack, new Date(Date.now() + 60_000));
  expect((await snapshot(stack, t, "ghost")).userEvents).toBe(0);

  // Only the digest is kept, never the id.
  const rows = await stack.db
    .selectFrom("suppressions")
    .selectAll()
    .where("project_id", "=", t.projectId)
    .execute();
  expect(rows).toMatchObject([{ identifier_type: "user_id", identifier_sha256: await sha256Hex("ghost") }]);
  expect(JSON.stringify(rows)).not.toContain('"ghost"');

  const listed = await call(
    stack,
    await ownerKey(stack, t, "developer"),
    "GET",
    `/v1/projects/${t.projectId}/suppressions`,
  );
  expect(listed.body).toMatchObject({
    object: "list",
    data: [
      {
        object: "suppression",
        identifierType: "user_id",
        identifierSha256: await sha256Hex("ghost"),
        deletionRequestId: created.body.id,
      },
    ],
    hasMore: false,
  });

  await ingestAndSettle(t.sdkKey, t.projectId, [
    { eventId: "g1", name: "view", userId: "ghost" },
    { eventId: "g2", name: "purchase", userId: "ghost", properties: { value: 3 } },
    { eventId: "v1", name: "view", userId: "visible" },
  ]);
  const suppressed = await snapshot(stack, t, "ghost");
  expect(suppressed).toMatchObject({ userEvents: 0, user: false, otherEvents: 1 });

  const lift = await call(stack, admin, "DELETE", `/v1/projects/${t.projectId}/suppressions/users/ghost`);
  expect(lift.status).toBe(204);
  expect(await auditActions(stack, t, `${t.projectId}:user_id:${await sha256Hex("ghost")}`)).toEqual([
    "suppression.lifted",
  ]);
  expect(
    (await call(stack, admin, "DELETE", `/v1/projects/${t.projectId}/suppressions/users/ghost`)).status,
  ).toBe(404);

  await ingestAndSettle(t.sdkKey, t.projectId, [{ eventId: "g3", name: "view", userId: "ghost" }]);
  await waitForEvents(stack.db, t.projectId, 2);
  expect((await snapshot(stack, t, "ghost")).userEvents).toBe(1);
});

test("suppression by email drops events carrying that email, whoever sends them", async () => {
  const t = await createTenant(stack.db);
  const admin = await ownerKey(stack, t, "admin");
  const created = await call(stack, admin, "POST", `/v1/projects/${t.projectId}/deletion-requests`, {
    email: "Quiet@Example.com",
    suppress: true,
  });
  expect(created.status).toBe(202);
  await ingestAndSettle(t.sdkKey, t.projectId, [
    { eventId: "q1", name: "view", userId: "u1", email: "quiet@example.com " },
    { eventId: "q2", name: "view", userId: "u2", email: "loud@example.com" },
  ]);
  const ids = (
    await stack.db.selectFrom("sdk_events").select("event_id").where("project_id", "=", t.projectId).execute()
  ).map((r) => r.event_id);
  expect(ids).toEqual(["q2"]);

  const digest = await sha256Hex("quiet@example.com");
  // Raw addresses never go in a URL: the emails/phones kinds take the digest only.
  const raw = await call(
    stack,
    admin,
    "DELETE",
    `/v1/projects/${t.projectId}/suppressions/emails/quiet@example.com`,
  );
  expect(raw.status).toBe(400);
  expect(raw.body.error.code).toBe("invalid_request");
  expect(
    (await call(stack, admin, "DELETE", `/v1/projects/${t.projectId}/suppressions/emails/${digest}`)).status,
  ).toBe(204);
});

// Who may lift (admin; another org's key gets 404) is checked by the shared route security suite.
test("an unknown suppression kind is a 400 and lifts nothing", async () => {
  const t = await createTenant(stack.db);
  const admin = await ownerKey(stack, t, "admin");
  await call(stack, admin, "DELETE", `/v1/projects/${t.projectId}/events/users/kept?suppress=true`);
  expect(
    (await call(stack, admin, "DELETE", `/v1/projects/${t.projectId}/suppressions/devices/x`)).status,
  ).toBe(400);
  expect(
    await stack.db
      .selectFrom("suppressions")
      .select("identifier_type")
      .where("project_id", "=", t.projectId)
      .execute(),
  ).toEqual([{ identifier_type: "user_id" }]);
});
