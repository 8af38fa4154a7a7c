import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { receiveEventsDeadLetter, receiveRelayDeadLetter } from "../../functions/deadLetters/receive";
import { handleEventsMessage } from "../../functions/events/handleEventsMessage";
import { createS3Store } from "../../functions/storage/objectStore";
import { freePort } from "../../scripts/local/embedded-postgres";
import { roleUrl } from "../../scripts/local/migrate";
import { createNodeDb } from "../../scripts/local/node-db";
import type { Db } from "../../shared/db";
import { createLogger } from "../../shared/logger";
import { testDatabaseUrl } from "../support/database";
import { eventsMessage, queuedEvent, relayEvent, relayMessage } from "../support/messages";
import { type LocalS3, startLocalS3 } from "../support/s3";
import { createTenant } from "../support/tenant";

// The queue consumers' decisions (ack, retry after how long, dead-letter) asserted directly and fast: the
// same plain functions the Workers call, against the real database and a real S3-API server, with the
// queue bindings replaced by recorders (what a Worker would put on a queue is what is asserted).

let owner: Db;
let consumerDb: Db;
let relayDb: Db;
let deadDb: Db;
let s3: LocalS3;
const logs: string[] = [];
const log = createLogger({ worker: "test" }, (line) => logs.push(line));

/** A queue binding that keeps what it is sent, or refuses everything. */
function recorder(refuse = false) {
  const sent: unknown[] = [];
  return {
    sent,
    async send(body: unknown) {
      if (refuse) throw new Error("queue unavailable");
      sent.push(body);
    },
    async sendBatch(messages: Iterable<{ body: unknown }>) {
      if (refuse) throw new Error("queue unavailable");
      for (const m of messages) sent.push(m.body);
    },
  };
}

beforeAll(async () => {
  owner = createNodeDb(testDatabaseUrl());
  consumerDb = createNodeDb(roleUrl(testDatabaseUrl(), "layers_consumer"), 2);
  relayDb = createNodeDb(roleUrl(testDatabaseUrl(), "layers_relay"), 2);
  // A database nobody answers at: the refused connection of an outage.
  const closed = new URL(testDatabaseUrl());
  closed.port = String(await freePort());
  deadDb = createNodeDb(roleUrl(closed.toString(), "layers_consumer"), 1);
  s3 = await startLocalS3();
});
afterAll(async () => {
  await Promise.all([owner, consumerDb, relayDb, deadDb].map((db) => db?.destroy()));
  await s3?.dispose();
});

const deps = (db: Db, dlq = recorder(), relayQueue = recorder()) => ({
  db,
  relayQueue,
  deadLetterQueue: dlq,
  log,
  retryBaseSeconds: 2,
  retryMaxSeconds: 600,
});

describe("handleEventsMessage", () => {
  test("stored → ack", async () => {
    const t = await createTenant(owner);
    const decision = await handleEventsMessage(deps(consumerDb), {
      id: "m1",
      body: eventsMessage(t, [queuedEvent({ eventId: "d1" })]),
      attempts: 1,
    });
    expect(decision).toEqual({ kind: "ack", outcome: "stored" });
  });

  test("malformed → put on the dead-letter queue with the reason, ack; the queue refusing → retry", async () => {
    const dlq = recorder();
    const poison = { v: 1, orgId: "org_x", events: "nope" };
    expect(
      await handleEventsMessage(deps(consumerDb, dlq), { id: "m2", body: poison, attempts: 1 }),
    ).toMatchObject({
      kind: "ack",
    });
    expect(dlq.sent).toEqual([{ deadLetter: 1, reason: "malformed", message: poison }]);
    const refused = await handleEventsMessage(deps(consumerDb, recorder(true)), {
      id: "m2",
      body: poison,
      attempts: 3,
    });
    expect(refused).toMatchObject({ kind: "retry", delaySeconds: 8 });
  });

  test("unknown project → dropped, ack", async () => {
    const t = await createTenant(owner);
    const body = eventsMessage(t, [queuedEvent({ eventId: "d2" })], { projectId: "proj_nope" });
    expect(await handleEventsMessage(deps(consumerDb), { id: "m3", body, attempts: 1 })).toEqual({
      kind: "ack",
      outcome: "dropped (unknown project)",
    });
  });

  test("database unreachable → retry with the backoff of the attempt (2 s doubling, capped at 600 s)", async () => {
    const t = await createTenant(owner);
    const body = eventsMessage(t, [queuedEvent({ eventId: "d3" })]);
    const delays: number[] = [];
    for (const attempts of [1, 2, 5, 10, 20]) {
      const decision = await handleEventsMessage(deps(deadDb), { id: "m4", body, attempts });
      expect(decision.kind).toBe("retry");
      if (decision.kind === "retry") delays.push(decision.delaySeconds);
    }
    expect(delays).toEqual([2, 4, 32, 600, 600]);
  });

  test("one event the database refuses → dead-lettered alone with its SQLSTATE; the rest stored; ack", async () => {
    const t = await createTenant(owner);
    const dlq = recorder();
    const body = eventsMessage(t, [
      queuedEvent({ eventId: "ok-1" }),
      queuedEvent({ eventId: "nul", properties: { note: "a\u0000b" } }),
      queuedEvent({ eventId: "ok-2" }),
    ]);
    expect(await handleEventsMessage(deps(consumerDb, dlq), { id: "m5", body, attempts: 1 })).toEqual({
      kind: "ack",
      outcome: "stored",
    });
    expect(dlq.sent).toMatchObject([
      { deadLetter: 1, reason: "data_error", code: "22P05", message: { events: [{ eventId: "nul" }] } },
    ]);
    const stored = await owner
      .selectFrom("sdk_events")
      .select("event_id")
      .where("project_id", "=", t.projectId)
      .orderBy("event_id")
      .execute();
    expect(stored.map((r) => r.event_id)).toEqual(["ok-1", "ok-2"]);
  });
});

describe("the dead-letter queues", () => {
  test("events: stored in object storage → ack; storage down → retry with backoff up to an hour", async () => {
    const t = await createTenant(owner);
    const body = eventsMessage(t, [queuedEvent({ eventId: "dl-1" })]);
    expect(
      await receiveEventsDeadLetter(s3.deadLetters, { id: "q1", body, attempts: 1 }, new Date()),
    ).toEqual({
      kind: "ack",
      outcome: "stored (max_retries)",
    });
    const down = createS3Store({
      endpoint: `http://127.0.0.1:${await freePort()}`,
      bucket: "layers-dead-letters",
      region: "us-east-1",
      accessKeyId: "x",
      secretAccessKey: "x",
    });
    for (const [attempts, delay] of [
      [1, 5],
      [6, 160],
      [50, 3600],
    ] as const) {
      expect(await receiveEventsDeadLetter(down, { id: "q1", body, attempts }, new Date())).toMatchObject({
        kind: "retry",
        delaySeconds: delay,
      });
    }
  });

  test("relay batches: recorded → ack; database down → retry, then after the record attempts, storage", async () => {
    const t = await createTenant(owner);
    const message = relayMessage(t, "tiktok", [relayEvent({ eventId: "r1", userId: "u" })], {
      batchId: `rb_${t.projectId.slice(-10)}qd`,
    });
    const receive = (db: Db, attempts: number) =>
      receiveRelayDeadLetter(
        { db, store: s3.deadLetters, recordAttempts: 12 },
        { id: "q2", body: message, attempts },
        new Date(),
      );
    expect(await receive(relayDb, 1)).toEqual({ kind: "ack", outcome: "recorded" });
    expect(await receive(deadDb, 1)).toMatchObject({ kind: "retry", delaySeconds: 5 });
    expect(await receive(deadDb, 11)).toMatchObject({ kind: "retry", delaySeconds: 600 });
    expect(await receive(deadDb, 12)).toEqual({ kind: "ack", outcome: "stored (max_retries)" });
  });
});
