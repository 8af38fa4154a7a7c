import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { revokeSdkKey } from "../../functions/sdkKeys/store";
import { withTenant } from "../../shared/db";
import type { EventsMessage } from "../../shared/schemas/queue";
import { type Stack, startStack, waitFor } from "../support/stack";
import { createTenant, type TestTenant } from "../support/tenant";

// Every bad-input class: its status, its stable code, one error shape, and nothing enqueued. A recorder
// stands in for the consumer so the test sees exactly what reached the queue.

let stack: Stack;
let tenant: TestTenant;
beforeAll(async () => {
  stack = await startStack({ consumer: "recorder" });
  tenant = await createTenant(stack.db);
});
afterAll(() => stack?.dispose());

/** Sends a marker event and returns every event enqueued up to and including it. */
async function drainQueue(key: string): Promise<EventsMessage["events"]> {
  const marker = `marker-${crypto.randomUUID()}`;
  const res = await stack.ingest({ eventId: marker, name: "marker" }, { key });
  expect(res.status).toBe(202);
  const seen: EventsMessage[] = [];
  await waitFor(async () => {
    seen.push(...((await stack.takeRecorded()) as EventsMessage[]));
    return seen.some((m) => m.events.some((e) => e.eventId === marker)) ? true : undefined;
  });
  return seen.flatMap((m) => m.events).filter((e) => e.eventId !== marker);
}

async function expectError(res: Response, status: number, code: string) {
  expect(res.status).toBe(status);
  const body = (await res.json()) as { error: Record<string, unknown> };
  expect(body.error).toMatchObject({ code, requestId: expect.stringMatching(/^req_/) });
  expect(typeof body.error.type).toBe("string");
  expect(typeof body.error.message).toBe("string");
  expect(res.headers.get("X-Request-Id")).toBe(body.error.requestId);
  return body.error;
}

describe("request-level errors", () => {
  const event = { eventId: "should-not-arrive", name: "x" };
  const cases: { name: string; send: () => Promise<Response>; status: number; code: string }[] = [
    {
      name: "no Authorization header",
      send: () => stack.ingest({ events: [event] }, { key: null }),
      status: 401,
      code: "unauthorized",
    },
    {
      name: "malformed Authorization header",
      send: () => stack.ingest({ events: [event] }, { headers: { Authorization: "Basic abc" } }),
      status: 401,
      code: "unauthorized",
    },
    {
      name: "unknown key",
      send: () => stack.ingest({ events: [event] }, { key: "lp_pk_doesNotExist000000000000000" }),
      status: 401,
      code: "unauthorized",
    },
    {
      name: "malformed JSON",
      send: () => stack.ingest(null, { key: tenant.sdkKey, rawBody: '{"events": [' }),
      status: 400,
      code: "invalid_json",
    },
    {
      name: "empty body",
      send: () => stack.ingest(null, { key: tenant.sdkKey, rawBody: "" }),
      status: 400,
      code: "invalid_json",
    },
    {
      name: "array body",
      send: () => stack.ingest([event], { key: tenant.sdkKey }),
      status: 400,
      code: "invalid_body",
    },
    {
      name: "events not an array",
      send: () => stack.ingest({ events: "nope" }, { key: tenant.sdkKey }),
      status: 400,
      code: "invalid_body",
    },
    {
      name: "empty batch",
      send: () => stack.ingest({ events: [] }, { key: tenant.sdkKey }),
      status: 400,
      code: "invalid_body",
    },
    {
      name: "501 events",
      send: () =>
        stack.ingest(
          { events: Array.from({ length: 501 }, (_, i) => ({ eventId: `e${i}`, name: "x" })) },
          { key: tenant.sdkKey },
        ),
      status: 400,
      code: "too_many_events",
    },
    {
      name: "body over 500 KB",
      send: () =>
        stack.ingest(
          { events: [{ ...event, properties: { blob: "x".repeat(600 * 1024) } }] },
          { key: tenant.sdkKey },
        ),
      status: 413,
      code: "payload_too_large",
    },
    {
      name: "every event invalid",
      send: () => stack.ingest({ events: [{ eventId: "no-name" }, { name: "" }] }, { key: tenant.sdkKey }),
      status: 400,
      code: "invalid_events",
    },
    {
      name: "GET",
      send: () => stack.ingest(null, { key: tenant.sdkKey, method: "GET" }),
      status: 405,
      code: "method_not_allowed",
    },
    {
      name: "unknown path",
      send: async () =>
        (await stack.mf.dispatchFetch("http://ingest.test/l/nope", {
          method: "POST",
        })) as unknown as Response,
      status: 404,
      code: "not_found",
    },
  ];

  test.each(cases)("$name → $status $code, nothing enqueued", async ({ send, status, code }) => {
    await expectError(await send(), status, code);
    expect(await drainQueue(tenant.sdkKey)).toEqual([]);
  });

  test("all-invalid batch lists each event's reason", async () => {
    const error = await expectError(
      await stack.ingest({ events: [{ eventId: "a" }, { name: "x", userId: 5 }] }, { key: tenant.sdkKey }),
      400,
      "invalid_events",
    );
    expect(error.details).toEqual({
      rejected: [
        { index: 0, code: "invalid_event", message: expect.stringContaining("name") },
        { index: 1, code: "invalid_event", message: expect.stringContaining("userId") },
      ],
    });
  });

  test("a revoked key is refused", async () => {
    const t = await createTenant(stack.db);
    expect(await withTenant(stack.db, t.orgId, (tx) => revokeSdkKey(tx, t.sdkKeyId, new Date()))).toBe(true);
    await expectError(
      await stack.ingest({ events: [{ eventId: "r1", name: "x" }] }, { key: t.sdkKey }),
      401,
      "unauthorized",
    );
    expect(await drainQueue(tenant.sdkKey)).toEqual([]);
  });

  test("an archived project refuses ingest", async () => {
    const t = await createTenant(stack.db);
    await withTenant(stack.db, t.orgId, (tx) =>
      tx.updateTable("projects").set({ archived_at: new Date() }).where("id", "=", t.projectId).execute(),
    );
    await expectError(
      await stack.ingest({ eventId: "a1", name: "x" }, { key: t.sdkKey }),
      403,
      "project_archived",
    );
    expect(await drainQueue(tenant.sdkKey)).toEqual([]);
  });
});

describe("partial batches", () => {
  test("valid events are accepted and enqueued, invalid ones are listed and never enqueued", async () => {
    const old = new Date(Date.now() - 401 * 86_400_000).toISOString();
    const res = await stack.ingest(
      {
        events: [
          { eventId: "ok-1", name: "open" },
          { eventId: "bad id with spaces", name: "open" },
          { eventId: "too-old", name: "open", timestamp: old },
          { eventId: "huge", name: "open", properties: { s: "é".repeat(17_000) } },
          { eventId: "deep", name: "open", properties: { a: { b: { c: { d: { e: { f: 1 } } } } } } },
          { eventId: "ok-2", name: "close", properties: { n: 1 } },
          // Postgres stores no NUL: accepted, it would poison its whole queue message.
          { eventId: "nul", name: "open", properties: { s: "a\u0000b" } },
        ],
      },
      { key: tenant.sdkKey },
    );
    expect(res.status).toBe(202);
    expect(await res.json()).toEqual({
      accepted: 2,
      rejected: [
        { index: 1, code: "invalid_event", message: expect.stringContaining("eventId") },
        { index: 2, code: "timestamp_too_old", message: expect.stringContaining("400 days") },
        { index: 3, code: "event_too_large", message: expect.any(String) },
        { index: 4, code: "invalid_event", message: expect.stringContaining("nested deeper") },
        { index: 6, code: "invalid_event", message: expect.stringContaining("NUL") },
      ],
    });
    expect((await drainQueue(tenant.sdkKey)).map((e) => e.eventId)).toEqual(["ok-1", "ok-2"]);
  });

  test("a project's shorter retention is the bound for old timestamps", async () => {
    const t = await createTenant(stack.db, { eventRetentionDays: 30 });
    const day = 86_400_000;
    const res = await stack.ingest(
      {
        events: [
          { eventId: "29d", name: "x", timestamp: new Date(Date.now() - 29 * day).toISOString() },
          { eventId: "31d", name: "x", timestamp: new Date(Date.now() - 31 * day).toISOString() },
        ],
      },
      { key: t.sdkKey },
    );
    expect(await res.json()).toEqual({
      accepted: 1,
      rejected: [{ index: 1, code: "timestamp_too_old", message: expect.any(String) }],
    });
    expect((await drainQueue(t.sdkKey)).map((e) => e.eventId)).toEqual(["29d"]);
  });
});

describe("queue packing", () => {
  test("500 events of ~900 bytes travel in a few messages, all of them, once", async () => {
    const events = Array.from({ length: 500 }, (_, i) => ({
      eventId: `p${i}`,
      name: "bulk",
      properties: { pad: "x".repeat(800) },
    }));
    const res = await stack.ingest({ events }, { key: tenant.sdkKey });
    expect(await res.json()).toEqual({ accepted: 500, rejected: [] });
    const marker = `marker-${crypto.randomUUID()}`;
    await stack.ingest({ eventId: marker, name: "marker" }, { key: tenant.sdkKey });
    const messages: EventsMessage[] = [];
    await waitFor(async () => {
      messages.push(...((await stack.takeRecorded()) as EventsMessage[]));
      return messages.some((m) => m.events.some((e) => e.eventId === marker)) ? true : undefined;
    });
    const bulk = messages.filter((m) => m.events[0]?.name === "bulk");
    // ~450 KB of events in ≤ 120 KB messages: 4 or 5 messages, not 500.
    expect(bulk.length).toBeGreaterThanOrEqual(4);
    expect(bulk.length).toBeLessThanOrEqual(5);
    for (const m of bulk)
      expect(new TextEncoder().encode(JSON.stringify(m)).byteLength).toBeLessThanOrEqual(128 * 1024);
    expect(bulk.flatMap((m) => m.events.map((e) => e.eventId))).toEqual(events.map((e) => e.eventId));
  });
});

describe("rate limiting", () => {
  test("past the per-key limit: 429 with Retry-After, nothing enqueued; other keys unaffected", async () => {
    const limited = await startStack({ consumer: "recorder", ingestRateLimit: 3 });
    try {
      const t = await createTenant(limited.db);
      const other = await createTenant(limited.db);
      for (let i = 0; i < 3; i++) {
        expect((await limited.ingest({ eventId: `rl${i}`, name: "x" }, { key: t.sdkKey })).status).toBe(202);
      }
      const res = await limited.ingest({ eventId: "rl-over", name: "x" }, { key: t.sdkKey });
      await expectError(res, 429, "rate_limited");
      expect(Number(res.headers.get("Retry-After"))).toBeGreaterThan(0);
      expect((await limited.ingest({ eventId: "other", name: "x" }, { key: other.sdkKey })).status).toBe(202);
      const ids: string[] = [];
      await waitFor(async () => {
        ids.push(
          ...((await limited.takeRecorded()) as EventsMessage[]).flatMap((m) =>
            m.events.map((e) => e.eventId),
          ),
        );
        return ids.length >= 4 ? true : undefined;
      });
      expect(ids.sort()).toEqual(["other", "rl0", "rl1", "rl2"]);
    } finally {
      await limited.dispose();
    }
  });
});
