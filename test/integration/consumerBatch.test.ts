import { sql } from "kysely";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { parseKeyring } from "../../functions/destinations/crypto";
import { putDestination } from "../../functions/destinations/store";
import { handleEventsMessages } from "../../functions/events/handleEventsMessage";
import { roleUrl } from "../../scripts/local/migrate";
import { createNodeDb } from "../../scripts/local/node-db";
import { type Db, withTenant } from "../../shared/db";
import { createLogger } from "../../shared/logger";
import type { RelayMessage } from "../../shared/schemas/relay";
import { testDatabaseUrl } from "../support/database";
import { eventsMessage, queuedEvent } from "../support/messages";
import { sha256 } from "../support/sha256";
import { TEST_DESTINATION_KEYRING } from "../support/stack";
import { createTenant, type TestTenant } from "../support/tenant";

// The consumer stores a queue batch's messages of one project in one statement. Every guarantee of one
// statement per message still holds per message: its own decision, duplicates stored and counted once,
// relays fed only from what was stored, erasure judged against each message's own receipt time, and a
// poison event costing only itself.

let owner: Db;
let consumerDb: Db;
const log = createLogger({ worker: "test" }, () => {});

function recorder() {
  const sent: unknown[] = [];
  return {
    sent,
    async send(body: unknown) {
      sent.push(body);
    },
    async sendBatch(messages: Iterable<{ body: unknown }>) {
      for (const m of messages) sent.push(m.body);
    },
  };
}

beforeAll(async () => {
  owner = createNodeDb(testDatabaseUrl());
  consumerDb = createNodeDb(roleUrl(testDatabaseUrl(), "layers_consumer"), 4);
});
afterAll(async () => {
  await Promise.all([owner, consumerDb].map((db) => db?.destroy()));
});

const deps = (dlq = recorder(), relayQueue = recorder()) => ({
  db: consumerDb,
  relayQueue,
  deadLetterQueue: dlq,
  log,
  retryBaseSeconds: 2,
  retryMaxSeconds: 600,
});

async function withMeta(t: TestTenant) {
  await withTenant(owner, t.orgId, (tx) =>
    putDestination(
      tx,
      t.orgId,
      t.projectId,
      {
        kind: "meta",
        enabled: true,
        datasetId: "ds",
        accessToken: "EAAtoken",
        testEventCode: null,
        sendDeviceIds: false,
      },
      parseKeyring(TEST_DESTINATION_KEYRING),
      new Date(),
    ),
  );
}

async function counts(projectId: string) {
  const { rows } = await sql<{ events: number; counted: number; users: number }>`
    select (select count(*) from sdk_events where project_id = ${projectId})::int as events,
      (select coalesce(sum(count), 0) from event_daily_counts where project_id = ${projectId})::int as counted,
      (select count(*) from sdk_users where project_id = ${projectId})::int as users`.execute(owner);
  return rows[0];
}

describe("a queue batch with several messages per project", () => {
  test("each message decided alone; duplicates across messages stored, counted and relayed once", async () => {
    const a = await createTenant(owner);
    const b = await createTenant(owner);
    await withMeta(a);
    const relays = recorder();
    const ev = (eventId: string, userId = "u1") => queuedEvent({ eventId, userId, consentAds: true });
    const messages = [
      eventsMessage(a, [ev("a1"), ev("a2")]),
      eventsMessage(b, [ev("b1", "u9")]),
      eventsMessage(a, [ev("a2"), ev("a3", "u2")]), // a2 again: another message of the same batch
      { v: 1, orgId: a.orgId, events: "nope" },
      eventsMessage(a, [ev("x1")], { projectId: "proj_nope" }),
    ];
    const decisions = await handleEventsMessages(
      deps(recorder(), relays),
      messages.map((body, i) => ({ id: `m${i}`, body, attempts: 1 })),
    );
    expect(decisions).toEqual([
      { kind: "ack", outcome: "stored" },
      { kind: "ack", outcome: "stored" },
      { kind: "ack", outcome: "stored" },
      { kind: "ack", outcome: "dead-lettered (malformed)" },
      { kind: "ack", outcome: "dropped (unknown project)" },
    ]);
    expect(await counts(a.projectId)).toEqual({ events: 3, counted: 3, users: 2 });
    expect(await counts(b.projectId)).toEqual({ events: 1, counted: 1, users: 1 });
    const relayed = (relays.sent as RelayMessage[]).flatMap((m) => m.events.map((e) => e.eventId));
    expect(relayed.sort()).toEqual(["a1", "a2", "a3"]);

    // The same batch again (a redelivery): nothing new, nothing counted or relayed twice.
    const again = recorder();
    const redelivered = await handleEventsMessages(
      deps(recorder(), again),
      messages.slice(0, 3).map((body, i) => ({ id: `m${i}`, body, attempts: 1 })),
    );
    expect(redelivered.every((d) => d.kind === "ack")).toBe(true);
    expect(await counts(a.projectId)).toEqual({ events: 3, counted: 3, users: 2 });
    expect(again.sent).toEqual([]);
  });

  test("a deletion request applies to each message by its own receipt time", async () => {
    const t = await createTenant(owner);
    const requestedAt = new Date();
    await withTenant(owner, t.orgId, (tx) =>
      tx
        .insertInto("deletion_requests")
        .values({
          id: `dr_${t.projectId.slice(-10)}`,
          org_id: t.orgId,
          project_id: t.projectId,
          user_id_sha256: sha256("gone"),
          subject_sha256: sha256("gone"),
          status: "completed",
          requested_at: requestedAt,
          requested_by: "test",
        })
        .execute(),
    );
    const before = new Date(requestedAt.getTime() - 60_000).toISOString();
    const after = new Date(requestedAt.getTime() + 60_000).toISOString();
    const decisions = await handleEventsMessages(deps(), [
      // Received before the request: the user's events in flight are erased.
      {
        id: "old",
        body: eventsMessage(t, [queuedEvent({ eventId: "old-gone", userId: "gone" })], {
          receivedAt: before,
        }),
        attempts: 1,
      },
      // Received after it: new activity of the same user id is stored.
      {
        id: "new",
        body: eventsMessage(t, [queuedEvent({ eventId: "new-gone", userId: "gone" })], { receivedAt: after }),
        attempts: 1,
      },
    ]);
    expect(decisions.map((d) => d.kind)).toEqual(["ack", "ack"]);
    const stored = await owner
      .selectFrom("sdk_events")
      .select(["event_id", "received_at"])
      .where("project_id", "=", t.projectId)
      .execute();
    expect(stored.map((r) => r.event_id)).toEqual(["new-gone"]);
    expect(stored[0]?.received_at.toISOString()).toBe(after);
  });

  test("a poison event in one message of a group: only that event is dead-lettered", async () => {
    const t = await createTenant(owner);
    const dlq = recorder();
    const decisions = await handleEventsMessages(deps(dlq), [
      { id: "good", body: eventsMessage(t, [queuedEvent({ eventId: "g1" })]), attempts: 1 },
      {
        id: "bad",
        body: eventsMessage(t, [
          queuedEvent({ eventId: "p1" }),
          // Valid JSON, refused by Postgres (jsonb has no NUL): SQLSTATE 22P05.
          queuedEvent({ eventId: "p2", properties: { note: "a\u0000b" } }),
          queuedEvent({ eventId: "p3" }),
        ]),
        attempts: 1,
      },
    ]);
    expect(decisions).toEqual([
      { kind: "ack", outcome: "stored" },
      { kind: "ack", outcome: "stored" },
    ]);
    expect((await counts(t.projectId))?.events).toBe(3);
    expect(dlq.sent).toMatchObject([
      { reason: "data_error", code: "22P05", message: { events: [{ eventId: "p2" }] } },
    ]);
  });

  test("user properties: the newest event's value per key, whether every event was new or some were not", async () => {
    const t = await createTenant(owner);
    const at = (minutes: number) => new Date(Date.UTC(2026, 0, 1, 12, minutes)).toISOString();
    const ev = (eventId: string, minutes: number, properties: Record<string, unknown>) =>
      queuedEvent({ eventId, userId: "u", timestamp: at(minutes), properties });
    // "__proto__" is a key like any other (it must not become a prototype on the way).
    const proto = JSON.parse('{"__proto__": {"x": 1}}') as Record<string, unknown>;
    const user = async () =>
      (
        await sql<{ properties: unknown; times: unknown }>`
          select properties, property_times as times from sdk_users
          where project_id = ${t.projectId} and user_id = 'u'`.execute(owner)
      ).rows[0];
    const ms = (minutes: number) => Date.parse(at(minutes));
    // Object.fromEntries makes "__proto__" an own key (an object literal would set the prototype).
    const times = (entries: [string, number][]) => Object.fromEntries(entries);

    // Every event new: the values come from the newest event per key, across the group's messages.
    await handleEventsMessages(deps(), [
      { id: "m1", body: eventsMessage(t, [ev("e2", 2, { tier: "pro", city: "Berlin" })]), attempts: 1 },
      {
        id: "m2",
        body: eventsMessage(t, [ev("e1", 1, { tier: "free", lang: "de", ...proto })]),
        attempts: 1,
      },
      { id: "m3", body: eventsMessage(t, [ev("e3", 3, { city: "Munich" })]), attempts: 1 },
    ]);
    const first = await user();
    expect(first?.properties).toEqual({ tier: "pro", city: "Munich", lang: "de", ...proto });
    expect(Object.keys(first?.properties as object)).toContain("__proto__");
    expect(first?.times).toEqual(
      times([
        ["tier", ms(2)],
        ["city", ms(3)],
        ["lang", ms(1)],
        ["__proto__", ms(1)],
      ]),
    );

    // One event already stored, redelivered with other (newer-dated) content: only the new events move the
    // state, so "tier" stays and the new "team" and "lang" arrive.
    await handleEventsMessages(deps(), [
      {
        id: "m4",
        body: eventsMessage(t, [ev("e3", 9, { tier: "gone", city: "Paris" }), ev("e4", 5, { team: "a" })]),
        attempts: 1,
      },
      { id: "m5", body: eventsMessage(t, [ev("e5", 4, { lang: "fr", tier: "basic" })]), attempts: 1 },
    ]);
    const second = await user();
    expect(second?.properties).toEqual({ tier: "basic", city: "Munich", lang: "fr", team: "a", ...proto });
    expect(second?.times).toEqual(
      times([
        ["tier", ms(4)],
        ["city", ms(3)],
        ["lang", ms(4)],
        ["team", ms(5)],
        ["__proto__", ms(1)],
      ]),
    );

    // Late, older events fill missing keys but never overwrite newer ones.
    await handleEventsMessages(deps(), [
      { id: "m6", body: eventsMessage(t, [ev("e0", 0, { tier: "old", zip: "10115" })]), attempts: 1 },
    ]);
    expect((await user())?.properties).toEqual({
      tier: "basic",
      city: "Munich",
      lang: "fr",
      team: "a",
      zip: "10115",
      ...proto,
    });
  });
});
