import path from "node:path";
import { neonConfig } from "@neondatabase/serverless";
import { build } from "esbuild";
import { sql } from "kysely";
import { Miniflare } from "miniflare";
import { afterAll, afterEach, beforeAll, describe, expect, test } from "vitest";
import { WebSocket } from "ws";
import { ROOT } from "../../scripts/local/bundle";
import { createNodeDb } from "../../scripts/local/node-db";
import { startWsBridge, type WsBridge } from "../../scripts/local/ws-bridge";
import type { Db } from "../../shared/db";
import { createNeonPool } from "../../shared/db/neonPool";
import { testDatabaseUrl } from "../support/database";
import { addDestinations } from "../support/destinations";
import { type FakePlatforms, startFakePlatforms } from "../support/fakePlatforms";
import { type FaultyProxy, startFaultyProxy } from "../support/faultyProxy";
import { eventsMessage, queuedEvent } from "../support/messages";
import { type Stack, startStack, waitFor } from "../support/stack";
import { createTenant, type TestTenant } from "../support/tenant";
import { browserHeaders, PAGE_URL } from "../support/web";

// The database failing under a queue invocation — connections cut mid-query, or a database that stops
// answering without closing anything — never holds the invocation (and with it the queue): every message
// is decided (stored, or retried with backoff), and once the database is back every accepted event is
// stored exactly once and relayed. Postgres is shared with other tests, so the faults are made by a proxy
// in front of it (test/support/faultyProxy.ts), never by stopping it.

/** A queue invocation workerd had to cancel because nothing could ever wake it again. */
const HUNG = "detected that your Worker's code had hung";
/** Short, so a dead connection costs the tests seconds; production's default is 15 s. */
const DATABASE_TIMEOUT_MS = "2000";
const QUERY_TIMED_OUT = "a database query took longer than 2000 ms";
const CONNECT_TIMED_OUT = "getting a database connection took longer than 2000 ms";

type LockedTable = "sdk_events" | "relay_deliveries";

/**
 * Holds an exclusive lock on `table` from the test's own connection, so a Worker's write to it waits
 * on the server — a query in flight, for as long as the test wants — until the returned release().
 */
async function lockTable(db: Db, table: LockedTable): Promise<() => Promise<void>> {
  let release = () => {};
  const released = new Promise<void>((resolve) => {
    release = resolve;
  });
  let locked = () => {};
  const isLocked = new Promise<void>((resolve) => {
    locked = resolve;
  });
  const holding = db.transaction().execute(async (tx) => {
    await sql`lock table ${sql.table(table)} in exclusive mode`.execute(tx);
    locked();
    await released;
  });
  await isLocked;
  return async () => {
    release();
    await holding;
  };
}

/** Waits until `count` Worker queries are blocked on the lock held on `table`. */
async function blockedOn(db: Db, table: LockedTable, count: number): Promise<void> {
  await waitFor(async () => {
    const { rows } = await sql<{ n: string }>`
      select count(*) as n from pg_locks where not granted and relation = to_regclass(${table})
    `.execute(db);
    return Number(rows[0]?.n) >= count ? true : undefined;
  });
}

async function stored(db: Db, projectId: string): Promise<{ events: number; counted: number }> {
  const events = await db
    .selectFrom("sdk_events")
    .select((eb) => eb.fn.countAll<string>().as("n"))
    .where("project_id", "=", projectId)
    .executeTakeFirstOrThrow();
  const counted = await db
    .selectFrom("event_daily_counts")
    .select("count")
    .where("project_id", "=", projectId)
    .execute();
  return { events: Number(events.n), counted: counted.reduce((sum, r) => sum + Number(r.count), 0) };
}

/** The log lines with `msg` written since line `from` (the consumer's failure lines name no project). */
function logsSince(stack: Stack, from: number, msg: string): string[] {
  return stack.logs.slice(from).filter((l) => l.includes(msg));
}

describe("the database driver when its connections die", () => {
  let proxy: FaultyProxy;
  let bridge: WsBridge;
  beforeAll(async () => {
    const target = new URL(testDatabaseUrl());
    proxy = await startFaultyProxy({ host: target.hostname, port: Number(target.port || 5432) });
    bridge = await startWsBridge({ host: "127.0.0.1", port: proxy.port });
    // The driver in Node, as workerd runs it: WebSockets (the `ws` package) through the same bridge.
    neonConfig.webSocketConstructor = WebSocket;
  });
  afterAll(async () => {
    await bridge?.close();
    await proxy?.close();
  });

  test("a query waiting for the only connection gets a new one when that connection is cut", async () => {
    const pool = createNeonPool({
      connectionString: testDatabaseUrl(),
      wsProxy: `127.0.0.1:${bridge.port}/v1`,
      max: 1,
    });
    try {
      const running = pool.query("select pg_sleep(5)");
      const waiting = pool.query("select 1 as one");
      const owner = createNodeDb(testDatabaseUrl(), 1);
      try {
        await waitFor(async () => {
          const { rows } = await sql<{ n: string }>`
            select count(*) as n from pg_stat_activity where state = 'active' and query = 'select pg_sleep(5)'
          `.execute(owner);
          return Number(rows[0]?.n) > 0 ? true : undefined;
        });
      } finally {
        await owner.destroy();
      }
      proxy.cut();
      await expect(running).rejects.toThrow(/terminated/);
      // Before the fix the waiter stayed queued forever: the pool only serves it from a callback of
      // client.end() that the bundled driver never called for a connection that had already ended.
      const answer = await Promise.race([
        waiting,
        new Promise<never>((_, reject) =>
          setTimeout(() => reject(new Error("still waiting after 3 s")), 3000),
        ),
      ]);
      expect(answer.rows).toEqual([{ one: 1 }]);
    } finally {
      await pool.end();
    }
  });

  test("in workerd, bytes the driver writes to a socket that has closed are dropped, not thrown from a timer", async () => {
    // The driver flushes writes from a timer; a socket closed in between made workerd's send() throw
    // "Can't call WebSocket send() after close()" there, once per lost connection, uncaught.
    const bundle = await build({
      stdin: {
        resolveDir: ROOT,
        contents: `
          import { neonConfig } from "@neondatabase/serverless";
          import { createNeonPool } from "./shared/db/neonPool";
          export default {
            async fetch() {
              createNeonPool({ connectionString: "postgres://u@db.invalid/x", wsProxy: "127.0.0.1:${bridge.port}/v1", max: 1 });
              const Socket = neonConfig.webSocketConstructor ?? WebSocket;
              const ws = new Socket("ws://127.0.0.1:${bridge.port}/v1?address=db.invalid:5432");
              await new Promise((resolve) => ws.addEventListener("open", resolve));
              ws.close();
              try {
                ws.send(new Uint8Array([0]));
                return new Response("dropped");
              } catch (error) {
                return new Response(String(error));
              }
            },
          };`,
      },
      bundle: true,
      write: false,
      format: "esm",
      platform: "browser",
      conditions: ["workerd", "worker", "browser"],
      logLevel: "silent",
    });
    const mf = new Miniflare({
      modules: [
        {
          type: "ESModule",
          path: path.join(ROOT, "ws-guard.js"),
          contents: bundle.outputFiles[0]?.text ?? "",
        },
      ],
      compatibilityDate: "2026-04-20",
    });
    try {
      expect(await (await mf.dispatchFetch("http://guard.test/")).text()).toBe("dropped");
    } finally {
      await mf.dispose();
    }
  });
});

describe("queue Workers through a database outage", () => {
  let stack: Stack;
  let fakes: FakePlatforms;
  beforeAll(async () => {
    fakes = await startFakePlatforms();
    stack = await startStack({
      faultyDatabase: true,
      // A warm key cache lets the edge keep accepting while the database is unreachable.
      ingestVars: { SDK_KEY_CACHE_TTL_SECONDS: "600" },
      consumerVars: { DATABASE_TIMEOUT_MS, RETRY_BASE_DELAY_SECONDS: "1" },
      relayVars: { ...fakes.vars, DATABASE_TIMEOUT_MS },
    });
  });
  afterAll(async () => {
    await stack?.dispose();
    await fakes?.close();
  });
  // A failed test must not leave the next one without a database.
  afterEach(() => stack?.proxy?.setMode("pass"));

  async function warm(t: TestTenant): Promise<void> {
    expect((await stack.ingest({ eventId: "warm", name: "x" }, { key: t.sdkKey })).status).toBe(202);
    await waitFor(async () => ((await stored(stack.db, t.projectId)).events === 1 ? true : undefined));
  }

  test("the database stops answering mid-query: the batch is retried, and once it answers every event is stored exactly once", async () => {
    const from = stack.logs.length;
    const t = await createTenant(stack.db);
    await warm(t);
    const unlock = await lockTable(stack.db, "sdk_events");
    const events = Array.from({ length: 20 }, (_, i) => ({ eventId: `silent-${i}`, name: "x", userId: "u" }));
    expect((await stack.ingest({ events }, { key: t.sdkKey })).status).toBe(202);
    await blockedOn(stack.db, "sdk_events", 1);
    // Connections stay open and say nothing from here on, the insert in flight included: its answer, and
    // its commit, never come (the server may finish the insert; only the client can tell it to commit).
    stack.proxy?.setMode("blackhole");
    await unlock();

    // The query in flight gives up, then the retry's connection attempt does: each invocation ends, and
    // ends with a connection still stuck in its handshake for its teardown to deal with.
    await waitFor(async () => {
      const lines = logsSince(stack, from, "persist failed, will retry");
      return lines.some((l) => l.includes(QUERY_TIMED_OUT)) &&
        lines.some((l) => l.includes(CONNECT_TIMED_OUT))
        ? true
        : undefined;
    });
    stack.proxy?.setMode("pass");

    await waitFor(
      async () => ((await stored(stack.db, t.projectId)).events === 21 ? true : undefined),
      30_000,
    );
    expect(await stored(stack.db, t.projectId)).toEqual({ events: 21, counted: 21 });
    expect(logsSince(stack, from, HUNG)).toEqual([]);
  });

  test("connections cut mid-batch: the batch's other statements get new connections and everything is stored exactly once", async () => {
    const from = stack.logs.length;
    const t = await createTenant(stack.db);
    await warm(t);
    // Ten projects, so ten statements (the consumer stores one project's messages together).
    const others = await Promise.all(Array.from({ length: 9 }, () => createTenant(stack.db)));
    const tenants = [t, ...others];
    const unlock = await lockTable(stack.db, "sdk_events");
    // Ten messages in one batch: four statements hold the pool's four connections (blocked on the lock),
    // six wait.
    const queue = await stack.mf.getQueueProducer("EVENTS_QUEUE", "ingest");
    await queue.sendBatch(
      tenants.map((tenant, m) => ({
        body: eventsMessage(
          tenant,
          Array.from({ length: 5 }, (_, i) => queuedEvent({ eventId: `cut-${m}-${i}` })),
        ),
        contentType: "json" as const,
      })),
    );
    await blockedOn(stack.db, "sdk_events", 4);
    stack.proxy?.cut(); // as a database restart does
    await unlock();

    const all = async () => {
      const each = await Promise.all(tenants.map((tenant) => stored(stack.db, tenant.projectId)));
      return {
        events: each.reduce((sum, e) => sum + e.events, 0),
        counted: each.reduce((sum, e) => sum + e.counted, 0),
      };
    };
    await waitFor(async () => ((await all()).events === 51 ? true : undefined), 30_000);
    expect(await all()).toEqual({ events: 51, counted: 51 });
    // Only the four cut mid-query failed; none failed for want of a connection, no invocation hung.
    const failed = logsSince(stack, from, "persist failed, will retry");
    expect(failed.length).toBeGreaterThan(0);
    expect(failed.filter((l) => l.includes("DatabaseTimeoutError"))).toEqual([]);
    expect(logsSince(stack, from, HUNG)).toEqual([]);
  });

  test("the relay Worker: a database that stops answering mid-batch delays the delivery, never stops it", async () => {
    const from = stack.logs.length;
    const t = await createTenant(stack.db);
    await warm(t);
    await addDestinations(stack.db, t, fakes, { meta: {} });
    const ids = Array.from({ length: 5 }, (_, i) => `${t.projectId}-relay-${i}`);
    const unlock = await lockTable(stack.db, "relay_deliveries");
    // Website events, as Meta accepts them: with the browser's User-Agent and the page URL.
    const events = ids.map((eventId) => ({
      eventId,
      name: "purchase",
      userId: "u",
      pageUrl: PAGE_URL,
      properties: { value: 1, currency: "USD" },
    }));
    expect((await stack.ingest({ events }, { key: t.sdkKey, headers: browserHeaders })).status).toBe(202);
    // The batch reached Meta; recording the delivery is what waits on the lock.
    await blockedOn(stack.db, "relay_deliveries", 1);
    stack.proxy?.setMode("blackhole");
    await unlock();

    await waitFor(async () => {
      const lines = logsSince(stack, from, "relay batch failed on our side, will retry");
      return lines.some((l) => l.includes(QUERY_TIMED_OUT)) &&
        lines.some((l) => l.includes(CONNECT_TIMED_OUT))
        ? true
        : undefined;
    });
    stack.proxy?.setMode("pass");

    const delivered = await waitFor(async () => {
      const row = await stack.db
        .selectFrom("relay_deliveries")
        .select(["status", "sent_count"])
        .where("project_id", "=", t.projectId)
        .where("destination", "=", "meta")
        .executeTakeFirst();
      return row?.status === "delivered" ? row : undefined;
    }, 30_000);
    expect(delivered.sent_count).toBe(5);
    expect(ids.every((id) => fakes.meta.accepted.has(id))).toBe(true);
    expect(await stored(stack.db, t.projectId)).toEqual({ events: 6, counted: 6 });
    expect(logsSince(stack, from, HUNG)).toEqual([]);
  });
});
