import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { putDeadLetter } from "../../../functions/deadLetters/store";
import { persistEvents } from "../../../functions/events/persistEvents";
import { createProject } from "../../../functions/projects/store";
import { createSdkKey } from "../../../functions/sdkKeys/store";
import { withTenant } from "../../../shared/db";
import { sha256Hex } from "../../../shared/hash";
import { rememberSecret } from "../../support/issuedSecrets";
import { eventsMessage, queuedEvent } from "../../support/messages";
import { orgSnapshot } from "../../support/orgSnapshot";
import { waitForEvents } from "../../support/rows";
import { findInTables } from "../../support/scan";
import { type Stack, startStack, waitFor } from "../../support/stack";
import { createTenant, type TestTenant } from "../../support/tenant";
import { call, ownerKey, runCron } from "./helpers";

// Identity (issue 12): the SDK sends an anonymous id from the first event; identify links it to the user
// id. Access, export and deletion by user id cover the events sent under the user's linked anonymous ids
// before identify, within the project that recorded the link and nowhere else.

let stack: Stack;
beforeAll(async () => {
  stack = await startStack();
});
afterAll(() => stack?.dispose());

const unique = () => crypto.randomUUID().slice(0, 8);
const minutesFromNow = (m: number) => new Date(Date.now() + m * 60_000);

/** A second project (with its SDK key) in the tenant's org. */
async function secondProject(t: TestTenant): Promise<TestTenant> {
  const { project, key } = await withTenant(stack.db, t.orgId, async (tx) => {
    const project = await createProject(tx, t.orgId, { name: "Second app" });
    return { project, key: await createSdkKey(tx, t.orgId, project.id) };
  });
  rememberSecret(key.secret);
  return { orgId: t.orgId, projectId: project.id, sdkKey: key.secret, sdkKeyId: key.id };
}

async function ingest(t: TestTenant, events: unknown[]) {
  const before = await countEvents(t.projectId);
  const res = await stack.ingest({ events }, { key: t.sdkKey });
  expect(res.status).toBe(202);
  expect(((await res.json()) as { rejected: unknown[] }).rejected).toEqual([]);
  await waitForEvents(stack.db, t.projectId, before + events.length);
}

/** Ingests a batch and waits until the consumer has handled it (stored or dropped). */
async function ingestAndSettle(t: TestTenant, events: unknown[]) {
  const mark = stack.logs.length;
  expect((await stack.ingest({ events }, { key: t.sdkKey })).status).toBe(202);
  await waitFor(async () =>
    stack.logs.slice(mark).some((l) => l.includes("events persisted") && l.includes(t.projectId))
      ? true
      : undefined,
  );
}

async function countEvents(projectId: string): Promise<number> {
  const row = await stack.db
    .selectFrom("sdk_events")
    .select((eb) => eb.fn.countAll<string>().as("n"))
    .where("project_id", "=", projectId)
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

async function eventIds(projectId: string): Promise<string[]> {
  const rows = await stack.db
    .selectFrom("sdk_events")
    .select("event_id")
    .where("project_id", "=", projectId)
    .orderBy("event_id")
    .execute();
  return rows.map((r) => r.event_id);
}

async function links(projectId: string) {
  return stack.db
    .selectFrom("sdk_identity_links")
    .select(["anonymous_id", "user_id"])
    .where("project_id", "=", projectId)
    .orderBy("anonymous_id")
    .orderBy("user_id")
    .execute();
}

describe("anonymous events, then identify", () => {
  test("identify links the anonymous id; access and export by user id return the events sent before it; deletion erases them, nothing else", async () => {
    const t = await createTenant(stack.db);
    const p2 = await secondProject(t);
    const otherOrg = await createTenant(stack.db);
    const secret = await ownerKey(stack, t, "admin");
    const alice = `alice-${unique()}`;
    const bob = `bob-${unique()}`;
    const phone = `anon-phone-${unique()}`; // alice's first device
    const laptop = `anon-laptop-${unique()}`; // alice's second device
    const bobDevice = `anon-bob-${unique()}`;
    const stranger = `anon-stranger-${unique()}`; // never identified
    const marker = `secret-plan-${unique()}`; // a property only alice's anonymous events carry

    await ingest(t, [
      { eventId: "ph-1", name: "app_open", anonymousId: phone, properties: { plan: marker } },
      { eventId: "ph-2", name: "view", anonymousId: phone, properties: { plan: marker } },
      { eventId: "lt-1", name: "page_view", anonymousId: laptop },
      { eventId: "bd-1", name: "app_open", anonymousId: bobDevice },
      { eventId: "st-1", name: "app_open", anonymousId: stranger },
    ]);
    await ingest(t, [
      { eventId: "ph-id", name: "identify", userId: alice, anonymousId: phone, email: "alice@example.com" },
      { eventId: "ph-3", name: "purchase", userId: alice, anonymousId: phone },
      { eventId: "lt-id", name: "identify", userId: alice, anonymousId: laptop },
      { eventId: "bd-id", name: "identify", userId: bob, anonymousId: bobDevice },
    ]);
    // The same anonymous id in another project of the org and in another org: there, it is linked only
    // where that project recorded it (the other org), or not at all (p2: alice used another device there).
    await ingest(p2, [
      { eventId: "p2-anon", name: "app_open", anonymousId: phone },
      { eventId: "p2-alice", name: "identify", userId: alice, anonymousId: `anon-p2-${unique()}` },
    ]);
    await ingest(otherOrg, [
      { eventId: "o-anon", name: "app_open", anonymousId: phone },
      { eventId: "o-id", name: "identify", userId: alice, anonymousId: phone },
    ]);

    // Stored: every event keeps its anonymous id; the links are one row per pair.
    expect(await links(t.projectId)).toEqual(
      [
        { anonymous_id: phone, user_id: alice },
        { anonymous_id: laptop, user_id: alice },
        { anonymous_id: bobDevice, user_id: bob },
      ].sort((a, b) => (a.anonymous_id < b.anonymous_id ? -1 : 1)),
    );
    const anonRow = await stack.db
      .selectFrom("sdk_events")
      .select(["user_id", "anonymous_id"])
      .where("project_id", "=", t.projectId)
      .where("event_id", "=", "ph-1")
      .executeTakeFirstOrThrow();
    expect(anonRow).toEqual({ user_id: null, anonymous_id: phone });

    // Access: the anonymous events sent before identify are alice's, on both devices; bob's and the
    // stranger's are not. Paged one event at a time, so the cursor walks across both kinds.
    const path = `/v1/projects/${t.projectId}/events/users/${alice}`;
    const first = await call(stack, secret, "GET", `${path}?order=asc&limit=1`);
    expect(first.status).toBe(200);
    expect(first.body).toMatchObject({ userId: alice, anonymousIds: [laptop, phone].sort() });
    const seen: string[] = first.body.events.data.map((e: { id: string }) => e.id);
    let cursor: string | null = first.body.events.nextCursor;
    while (cursor) {
      const page = await call(stack, secret, "GET", `${path}?order=asc&limit=1&starting_after=${cursor}`);
      expect(page.status).toBe(200);
      seen.push(...page.body.events.data.map((e: { id: string }) => e.id));
      cursor = page.body.events.nextCursor;
    }
    const aliceEvents = ["ph-1", "ph-2", "lt-1", "ph-id", "ph-3", "lt-id"];
    expect([...seen].sort()).toEqual([...aliceEvents].sort());
    const full = await call(stack, secret, "GET", `${path}?limit=100`);
    expect(full.body.events.data.find((e: { id: string }) => e.id === "ph-1")).toMatchObject({
      userId: null,
      anonymousId: phone,
      properties: { plan: marker },
    });

    // Export (NDJSON) holds the same events.
    const exported = await stack.api(path, {
      headers: { Authorization: `Bearer ${secret}`, Accept: "application/x-ndjson" },
    });
    const lines = (await exported.text())
      .trimEnd()
      .split("\n")
      .map((l) => JSON.parse(l));
    expect(lines[0]).toMatchObject({
      object: "user_data",
      userId: alice,
      anonymousIds: [laptop, phone].sort(),
    });
    expect(
      lines
        .slice(1)
        .map((e: { id: string }) => e.id)
        .sort(),
    ).toEqual([...aliceEvents].sort());

    // The link is not followed across projects: in p2, alice's events are hers alone, not p2's events of
    // the anonymous id she used in the first project.
    const inP2 = await call(stack, secret, "GET", `/v1/projects/${p2.projectId}/events/users/${alice}`);
    expect(inP2.body.anonymousIds).toHaveLength(1);
    expect(inP2.body.events.data.map((e: { id: string }) => e.id)).toEqual(["p2-alice"]);

    const p2Before = await eventIds(p2.projectId);
    const otherOrgBefore = await orgSnapshot(stack.db, otherOrg.orgId);
    expect(otherOrgBefore.sdk_identity_links).toHaveLength(1); // the snapshot covers the new table

    // Deletion by user id.
    const created = await call(stack, secret, "DELETE", path);
    expect(created.status).toBe(202);
    const runAt = minutesFromNow(5);
    await runCron(stack, runAt);

    expect(await eventIds(t.projectId)).toEqual(["bd-1", "bd-id", "st-1"]);
    expect(await links(t.projectId)).toEqual([{ anonymous_id: bobDevice, user_id: bob }]);
    const receipt = await call(stack, secret, "GET", `/v1/deletion-requests/${created.body.id}`);
    expect(receipt.body).toMatchObject({
      status: "completed",
      deleted: { events: aliceEvents.length, users: 1 },
    });
    // The receipt keeps the anonymous ids as digests only, for the erasure rule.
    const row = await stack.db
      .selectFrom("deletion_requests")
      .select("anonymous_id_sha256s")
      .where("id", "=", created.body.id)
      .executeTakeFirstOrThrow();
    expect(row.anonymous_id_sha256s).toEqual([await sha256Hex(laptop), await sha256Hex(phone)].sort());
    // Nothing of alice's laptop, nor of her anonymous events' properties, is stored anywhere any more.
    expect(await findInTables(stack.db, [laptop, marker])).toEqual([]);
    const access = await call(stack, secret, "GET", path);
    expect(access.body).toMatchObject({ anonymousIds: [], user: null, events: { data: [] } });

    // Other projects and orgs: untouched, though they hold the same ids.
    expect(await eventIds(p2.projectId)).toEqual(p2Before);
    expect(await orgSnapshot(stack.db, otherOrg.orgId)).toEqual(otherOrgBefore);
  });

  test("an anonymous event of an erased user still in flight when the deletion ran is erased on arrival; one received after the request is kept", async () => {
    const t = await createTenant(stack.db);
    const secret = await ownerKey(stack, t, "admin");
    const user = `u-${unique()}`;
    const device = `anon-${unique()}`;
    await ingest(t, [
      { eventId: "a-1", name: "app_open", anonymousId: device },
      { eventId: "a-id", name: "identify", userId: user, anonymousId: device },
    ]);
    const receivedBefore = new Date().toISOString();
    const created = await call(stack, secret, "DELETE", `/v1/projects/${t.projectId}/events/users/${user}`);
    await runCron(stack, minutesFromNow(5));
    expect(await eventIds(t.projectId)).toEqual([]);
    expect(await links(t.projectId)).toEqual([]);

    // Received before the request, delivered by the queue after the deletion completed (a retry): the link
    // is gone, but the receipt's digest still names the anonymous id.
    const late = await persistEvents(
      stack.db,
      eventsMessage(t, [queuedEvent({ eventId: "a-late", anonymousId: device })], {
        receivedAt: receivedBefore,
      }),
    );
    expect(late).toMatchObject({ inserted: 0, erased: 1 });
    // Received after the request: the user came back (no suppression), as for an event with their user id.
    const requestedAt = new Date(
      (await call(stack, secret, "GET", `/v1/deletion-requests/${created.body.id}`)).body.requestedAt,
    );
    const after = await persistEvents(
      stack.db,
      eventsMessage(t, [queuedEvent({ eventId: "a-new", anonymousId: device })], {
        receivedAt: new Date(requestedAt.getTime() + 1_000).toISOString(),
      }),
    );
    expect(after).toMatchObject({ inserted: 1, erased: 0 });
    expect(await eventIds(t.projectId)).toEqual(["a-new"]);
  });

  test("a suppressed user's later anonymous events on a linked device are dropped, until the suppression is lifted", async () => {
    const t = await createTenant(stack.db);
    const admin = await ownerKey(stack, t, "admin");
    const ghost = `ghost-${unique()}`;
    const device = `anon-${unique()}`;
    const other = `anon-other-${unique()}`;
    await ingest(t, [
      { eventId: "g-0", name: "app_open", anonymousId: device },
      { eventId: "g-id", name: "identify", userId: ghost, anonymousId: device },
    ]);
    const created = await call(
      stack,
      admin,
      "DELETE",
      `/v1/projects/${t.projectId}/events/users/${ghost}?suppress=true`,
    );
    expect(created.body).toMatchObject({ status: "pending", suppress: true });
    await runCron(stack, minutesFromNow(1));
    expect(await eventIds(t.projectId)).toEqual([]);

    // Later, through the real ingest and consumer: the device's anonymous events are dropped (its link
    // lives on as a digest in the receipt), another device's are stored.
    await ingestAndSettle(t, [
      { eventId: "g-1", name: "view", anonymousId: device },
      { eventId: "o-1", name: "view", anonymousId: other },
    ]);
    expect(await eventIds(t.projectId)).toEqual(["o-1"]);

    // A new device: anonymous events then identify, in one flush. The identify is dropped (suppressed user
    // id), so no link is recorded, and the anonymous events sent with it go too.
    const newDevice = `anon-new-${unique()}`;
    await ingestAndSettle(t, [
      { eventId: "n-1", name: "app_open", anonymousId: newDevice },
      { eventId: "n-id", name: "identify", userId: ghost, anonymousId: newDevice },
    ]);
    expect(await eventIds(t.projectId)).toEqual(["o-1"]);
    expect(await links(t.projectId)).toEqual([]);

    const lift = await call(
      stack,
      admin,
      "DELETE",
      `/v1/projects/${t.projectId}/suppressions/users/${ghost}`,
    );
    expect(lift.status).toBe(204);
    await ingest(t, [{ eventId: "g-2", name: "view", anonymousId: device }]);
    expect(await eventIds(t.projectId)).toEqual(["g-2", "o-1"]);
  });

  test("before the deletion runs, the suppression follows the live link: the device's new anonymous events are dropped", async () => {
    const t = await createTenant(stack.db);
    const admin = await ownerKey(stack, t, "admin");
    const user = `u-${unique()}`;
    const device = `anon-${unique()}`;
    await ingest(t, [{ eventId: "l-id", name: "identify", userId: user, anonymousId: device }]);
    const created = await call(
      stack,
      admin,
      "DELETE",
      `/v1/projects/${t.projectId}/events/users/${user}?suppress=true`,
    );
    expect(created.body).toMatchObject({ status: "pending", suppress: true });
    // Received after the request (so the request itself does not reach it), before any Cron run.
    await ingestAndSettle(t, [{ eventId: "l-1", name: "view", anonymousId: device }]);
    expect(await eventIds(t.projectId)).toEqual(["l-id"]);
  });

  test("one anonymous id linked to two users (a shared device): either user's deletion erases its anonymous events, never the other user's own", async () => {
    const t = await createTenant(stack.db);
    const secret = await ownerKey(stack, t, "admin");
    const first = `first-${unique()}`;
    const second = `second-${unique()}`;
    const shared = `anon-shared-${unique()}`;
    await ingest(t, [
      { eventId: "s-0", name: "app_open", anonymousId: shared },
      { eventId: "s-first", name: "identify", userId: first, anonymousId: shared },
      // The first user logged out without reset(): the second signs in on the same anonymous id.
      { eventId: "s-second", name: "identify", userId: second, anonymousId: shared },
    ]);
    const forSecond = await call(stack, secret, "GET", `/v1/projects/${t.projectId}/events/users/${second}`);
    expect(forSecond.body.events.data.map((e: { id: string }) => e.id).sort()).toEqual(["s-0", "s-second"]);

    await call(stack, secret, "DELETE", `/v1/projects/${t.projectId}/events/users/${first}`);
    await runCron(stack, minutesFromNow(5));
    expect(await eventIds(t.projectId)).toEqual(["s-second"]);
    expect(await links(t.projectId)).toEqual([{ anonymous_id: shared, user_id: second }]);
  });
});

describe("dead letters", () => {
  test("a deletion removes the linked device's anonymous events from dead letters; other devices' and users' stay", async () => {
    const t = await createTenant(stack.db);
    const secret = await ownerKey(stack, t, "admin");
    const user = `u-${unique()}`;
    const device = `anon-${unique()}`;
    await ingest(t, [{ eventId: "d-id", name: "identify", userId: user, anonymousId: device }]);
    await putDeadLetter(stack.s3.deadLetters, {
      v: 1,
      kind: "events",
      id: `letter-${unique()}`,
      deadAt: new Date().toISOString(),
      reason: "data_error",
      code: "22P02",
      orgId: t.orgId,
      projectId: t.projectId,
      redrives: 0,
      body: eventsMessage(t, [
        queuedEvent({ eventId: "dl-mine", anonymousId: device }),
        queuedEvent({ eventId: "dl-other-device", anonymousId: `anon-${unique()}` }),
        queuedEvent({ eventId: "dl-other-user", userId: `v-${unique()}`, anonymousId: device }),
      ]),
    });
    const created = await call(stack, secret, "DELETE", `/v1/projects/${t.projectId}/events/users/${user}`);
    await runCron(stack, minutesFromNow(5));
    const receipt = await call(stack, secret, "GET", `/v1/deletion-requests/${created.body.id}`);
    expect(receipt.body).toMatchObject({
      status: "completed",
      deleted: { events: 1, deadLetteredEvents: 1 },
    });
    const letters = (await stack.deadLetters("events")).filter((l) => l.projectId === t.projectId);
    expect(
      letters.flatMap((l) => (l.body as { events: { eventId: string }[] }).events.map((e) => e.eventId)),
    ).toEqual(["dl-other-device", "dl-other-user"]);
  });
});

describe("ingest: anonymousId", () => {
  test("over 256 characters, empty, not a string or holding NUL: the event is refused, the others stored", async () => {
    const t = await createTenant(stack.db);
    const res = await stack.ingest(
      {
        events: [
          { eventId: "ok", name: "open", anonymousId: "a".repeat(256) },
          { eventId: "long", name: "open", anonymousId: "a".repeat(257) },
          { eventId: "empty", name: "open", anonymousId: "" },
          { eventId: "number", name: "open", anonymousId: 7 },
          { eventId: "nul", name: "open", anonymousId: "a\u0000b" },
        ],
      },
      { key: t.sdkKey },
    );
    expect(res.status).toBe(202);
    expect(await res.json()).toEqual({
      accepted: 1,
      rejected: [
        { index: 1, code: "invalid_event", message: expect.stringContaining("anonymousId") },
        { index: 2, code: "invalid_event", message: expect.stringContaining("anonymousId") },
        { index: 3, code: "invalid_event", message: expect.stringContaining("anonymousId") },
        { index: 4, code: "invalid_event", message: expect.stringContaining("NUL") },
      ],
    });
    await waitForEvents(stack.db, t.projectId, 1);
    expect(await eventIds(t.projectId)).toEqual(["ok"]);
  });
});
