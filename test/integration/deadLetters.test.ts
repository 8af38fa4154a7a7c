import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { putDeadLetter } from "../../functions/deadLetters/store";
import type { EventsMessage } from "../../shared/schemas/queue";
import type { RelayMessage } from "../../shared/schemas/relay";
import { api } from "../support/api";
import { addApiKey } from "../support/apiTenant";
import type { DeletionRequest, RelayDeliveryList } from "../support/apiTypes";
import { eventsMessage, queuedEvent, relayEvent, relayMessage } from "../support/messages";
import { waitForEvents } from "../support/rows";
import { type Stack, startStack, waitFor } from "../support/stack";
import { createTenant, type TestTenant } from "../support/tenant";
import { lastJobLog } from "./retention/fixtures";

// Nothing is lost when the database is down for longer than the retry window, and nothing is stored twice:
// a message that runs out of retries is kept in object storage (never in the database that failed), without
// the values that are never stored; the Cron Worker sends it back through the normal persist path once the
// database answers; a deletion reaches it meanwhile; it expires after 30 days. Real Workers, real Postgres,
// a real S3-API server.

let stack: Stack;
beforeAll(async () => {
  stack = await startStack({
    // A warm key cache lets the edge keep accepting while the database is unreachable.
    ingestVars: { SDK_KEY_CACHE_TTL_SECONDS: "600" },
    consumerVars: { RETRY_BASE_DELAY_SECONDS: "0" },
    // The retry window of production (about two hours) shrunk to three quick attempts.
    consumerMaxRetries: 2,
    deadLetterVars: { RELAY_RECORD_ATTEMPTS: "2" },
  });
});
afterAll(() => stack?.dispose());

const IDFA = "6D92078A-8246-4BA4-AE5B-76104861E7DC";
const TOKEN = "adservices-token-dead-letter-probe-0001";
const USER_AGENT = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) DeadLetterProbe/1.0";

async function warm(t: TestTenant) {
  expect((await stack.ingest({ eventId: `${t.projectId}-warm`, name: "x" }, { key: t.sdkKey })).status).toBe(
    202,
  );
  await waitForEvents(stack.db, t.projectId, 1);
  // The row is visible once it commits, but the consumer acknowledges the message only when the answer to
  // its commit arrives: stopping the bridge in between would dead-letter the warm message as well.
  await waitFor(async () =>
    stack.logs.some((l) => l.includes("events persisted") && l.includes(t.projectId)) ? true : undefined,
  );
}

async function lettersOf(t: TestTenant) {
  return (await stack.deadLetters("events")).filter((l) => l.projectId === t.projectId);
}

async function storedIds(t: TestTenant): Promise<string[]> {
  const rows = await stack.db
    .selectFrom("sdk_events")
    .select("event_id")
    .where("project_id", "=", t.projectId)
    .orderBy("event_id")
    .execute();
  return rows.map((r) => r.event_id);
}

async function dailyTotal(t: TestTenant): Promise<number> {
  const rows = await stack.db
    .selectFrom("event_daily_counts")
    .select("count")
    .where("project_id", "=", t.projectId)
    .execute();
  return rows.reduce((sum, r) => sum + Number(r.count), 0);
}

describe("a database outage past the retry window", () => {
  test("dead-lettered to storage without transient fields, redriven once the database is back, stored exactly once", async () => {
    const t = await createTenant(stack.db);
    await warm(t);
    await stack.stopBridge();
    const ids: string[] = [];
    for (let r = 0; r < 3; r++) {
      const events = Array.from({ length: 10 }, (_, i) => {
        const eventId = `${t.projectId}-out-${r}-${i}`;
        ids.push(eventId);
        return {
          eventId,
          name: "purchase",
          userId: `u${i}`,
          phone: "+1 650 555 1212",
          device: { idfa: IDFA },
          consent: { ads: true },
          adServicesToken: TOKEN,
          pageUrl: "https://shop.example/checkout",
        };
      });
      const res = await stack.ingest({ events }, { key: t.sdkKey, headers: { "User-Agent": USER_AGENT } });
      expect(res.status).toBe(202);
    }
    const letters = await waitFor(async () => {
      const got = await lettersOf(t);
      return got.length === 3 ? got : undefined;
    }, 30_000);
    for (const letter of letters) expect(letter).toMatchObject({ reason: "max_retries", redrives: 0 });
    // Device ids, AdServices tokens, relay phone hashes, the User-Agent and page URL never reach storage.
    const text = JSON.stringify(letters);
    for (const needle of [IDFA, TOKEN, "DeadLetterProbe", "relayPhone", "adIds", "shop.example"]) {
      expect(text).not.toContain(needle);
    }
    expect(await storedIds(t)).toEqual([`${t.projectId}-warm`]);

    // While the database is still down, the Cron run leaves them where they are.
    await stack.restartBridge();
    await stack.cron(new Date());
    expect(lastJobLog(stack, "dead-letters").counts).toMatchObject({ dead_letter_events_redriven: 3 });
    await waitForEvents(stack.db, t.projectId, 31, 30_000);
    expect(await storedIds(t)).toEqual([`${t.projectId}-warm`, ...ids].sort());
    expect(await dailyTotal(t)).toBe(31);
    expect(await lettersOf(t)).toEqual([]);

    // A letter sent back twice (its delete failed after the queue took it) still stores each event once.
    await putDeadLetter(stack.s3.deadLetters, {
      ...letters[0]!,
      id: "again",
      deadAt: new Date().toISOString(),
    });
    const persisted = () =>
      stack.logs.filter((l) => l.includes("events persisted") && l.includes(t.projectId));
    const before = persisted().length;
    await stack.cron(new Date());
    // The consumer handled the letter sent back a second time: nothing new was stored.
    const again = await waitFor(async () => (persisted().length > before ? persisted().at(-1) : undefined));
    expect(again).toContain('"inserted":0');
    expect(await lettersOf(t)).toEqual([]);
    expect(await storedIds(t)).toHaveLength(31);
    expect(await dailyTotal(t)).toBe(31);
  });

  test("a deletion requested meanwhile reaches the dead letters: the subject is never stored, the receipt counts them", async () => {
    const t = await createTenant(stack.db);
    const admin = (await addApiKey(stack.db, t.orgId, "admin")).secret;
    await warm(t);
    await stack.stopBridge();
    const events = ["alice", "bob"].flatMap((user) =>
      [0, 1, 2].map((i) => ({ eventId: `${t.projectId}-${user}-${i}`, name: "open", userId: user })),
    );
    expect((await stack.ingest({ events }, { key: t.sdkKey })).status).toBe(202);
    await waitFor(async () => ((await lettersOf(t)).length === 1 ? true : undefined), 30_000);
    await stack.restartBridge();

    const del = await api(stack, admin).delete<DeletionRequest>(
      `/v1/projects/${t.projectId}/events/users/alice`,
    );
    expect(del.status).toBe(202);
    const { id } = del.body;
    await stack.cron(new Date(Date.now() + 60_000));
    const receipt = (await api(stack, admin).get<DeletionRequest>(`/v1/deletion-requests/${id}`)).body;
    expect(receipt).toMatchObject({ status: "completed", deleted: { deadLetteredEvents: 3 } });
    // The letter sent back held bob's events only: its message is handled once, with three events.
    const redriven = await waitFor(async () =>
      stack.logs.find(
        (l) => l.includes("events persisted") && l.includes(t.projectId) && l.includes('"received":3'),
      ),
    );
    expect(redriven).toContain('"inserted":3');
    expect(await storedIds(t)).toEqual([
      `${t.projectId}-bob-0`,
      `${t.projectId}-bob-1`,
      `${t.projectId}-bob-2`,
      `${t.projectId}-warm`,
    ]);
    expect(JSON.stringify(await stack.deadLetters())).not.toContain(`${t.projectId}-alice`);
  });
});

describe("data the database refuses", () => {
  test("one bad event is dead-lettered with its SQLSTATE; the rest of its message is stored", async () => {
    const t = await createTenant(stack.db);
    // A message that did not come through the edge (which refuses NUL and unpaired surrogates): the
    // consumer's own wall. Postgres refuses the NUL in jsonb (SQLSTATE 22P05).
    const queue = await stack.mf.getQueueProducer<EventsMessage>("EVENTS_QUEUE", "ingest");
    await queue.send(
      eventsMessage(t, [
        queuedEvent({ eventId: "good-1" }),
        queuedEvent({ eventId: "bad", properties: { note: "a\u0000b" } }),
        queuedEvent({ eventId: "good-2" }),
      ]),
      { contentType: "json" },
    );
    await waitForEvents(stack.db, t.projectId, 2);
    const [letter] = await waitFor(async () => {
      const got = await lettersOf(t);
      return got.length ? got : undefined;
    });
    expect(letter).toMatchObject({ reason: "data_error", code: expect.stringMatching(/^22/) });
    expect((letter!.body as EventsMessage).events.map((e) => e.eventId)).toEqual(["bad"]);
    expect(await storedIds(t)).toEqual(["good-1", "good-2"]);
    // Not sent back automatically: it would only fail again.
    await stack.cron(new Date());
    expect(await lettersOf(t)).toHaveLength(1);
    expect(
      stack.logs.some((l) => l.includes("events refused by the database") && l.includes(t.projectId)),
    ).toBe(true);
  });
});

describe("expiry", () => {
  test("dead letters are deleted once 30 days old; younger ones wait", async () => {
    const t = await createTenant(stack.db);
    const now = new Date("2031-03-01T12:00:00.000Z");
    const letter = (id: string, daysAgo: number) => ({
      v: 1 as const,
      kind: "events" as const,
      id,
      deadAt: new Date(now.getTime() - daysAgo * 86_400_000).toISOString(),
      reason: "data_error" as const,
      code: "22P02",
      orgId: t.orgId,
      projectId: t.projectId,
      redrives: 0,
      body: eventsMessage(t, [queuedEvent({ eventId: id })]),
    });
    await putDeadLetter(stack.s3.deadLetters, letter("old", 32));
    await putDeadLetter(stack.s3.deadLetters, letter("young", 29));
    await stack.cron(now);
    expect((await lettersOf(t)).map((l) => l.id)).toEqual(["young"]);
  });
});

describe("relay batches that die while the database is down", () => {
  test("kept in storage after their record attempts, then recorded (listed by the API) once it is back", async () => {
    const t = await createTenant(stack.db);
    const admin = (await addApiKey(stack.db, t.orgId, "admin")).secret;
    const message = relayMessage(
      t,
      "tiktok",
      [relayEvent({ eventId: "relay-1", userId: "u1", country: "US" })],
      { batchId: `rb_${t.projectId.slice(-12)}x` },
    );
    await stack.stopBridge();
    const dlq = await stack.mf.getQueueProducer<RelayMessage>("RELAY_DLQ", "relay");
    await dlq.send(message, { contentType: "json" });
    const [letter] = await waitFor(async () => {
      const got = (await stack.deadLetters("relay")).filter((l) => l.projectId === t.projectId);
      return got.length ? got : undefined;
    }, 30_000);
    expect(letter).toMatchObject({ kind: "relay", id: message.batchId, reason: "max_retries" });
    await stack.restartBridge();
    await stack.cron(new Date());
    const listed = await waitFor(async () => {
      const res = await api(stack, admin).get<RelayDeliveryList>(
        `/v1/projects/${t.projectId}/destinations/tiktok/deliveries?status=dead_lettered`,
      );
      return res.body.data[0];
    });
    expect(listed).toMatchObject({ id: message.batchId, status: "dead_lettered", eventCount: 1 });
    expect((await stack.deadLetters("relay")).filter((l) => l.projectId === t.projectId)).toEqual([]);
  });
});
