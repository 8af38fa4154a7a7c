import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { persistEvents } from "../../../functions/events/persistEvents";
import { type NeonHttp, startNeonHttp } from "../../../scripts/local/neon-http";
import { startWsBridge, type WsBridge } from "../../../scripts/local/ws-bridge";
import { testDatabaseUrl } from "../../support/database";
import { eventsMessage, queuedEvent } from "../../support/messages";
import { waitForEvents } from "../../support/rows";
import { type Stack, startStack, waitFor } from "../../support/stack";
import { createTenant } from "../../support/tenant";
import { call, ownerKey, runCron, snapshot } from "./helpers";

// The race between a deletion and events still queued for that user. The rule (persistEvents): an event
// is dropped, never stored, when a deletion request for its user was made at or after the message was
// received — whatever the request's status, however late the consumer runs.

describe("events queued before a deletion never survive it", () => {
  let stack: Stack;
  let apiBridge: WsBridge;
  let apiHttp: NeonHttp;
  beforeAll(async () => {
    // The API and Cron Workers get their own bridge (and the API its own SQL-over-HTTP stand-in) to the
    // database, so stopping the stack's takes the database away from the consumer only: it keeps retrying
    // while the partner deletes.
    const target = new URL(testDatabaseUrl());
    const postgres = { host: target.hostname, port: Number(target.port || 5432) };
    apiBridge = await startWsBridge(postgres);
    apiHttp = await startNeonHttp(postgres);
    const proxy = `127.0.0.1:${apiBridge.port}/v1`;
    stack = await startStack({
      ingestVars: { SDK_KEY_CACHE_TTL_SECONDS: "600" },
      consumerVars: { RETRY_BASE_DELAY_SECONDS: "1", RETRY_MAX_DELAY_SECONDS: "2" },
      apiVars: { NEON_WS_PROXY: proxy, NEON_HTTP_PROXY: `127.0.0.1:${apiHttp.port}` },
      cronVars: { NEON_WS_PROXY: proxy },
    });
  });
  afterAll(async () => {
    await stack?.dispose();
    await apiBridge?.close();
    await apiHttp?.close();
  });

  test("consumer down → DELETE → Cron completes → consumer back: nothing of the user is stored", async () => {
    const t = await createTenant(stack.db);
    const admin = await ownerKey(stack, t, "admin");
    const stored = Array.from({ length: 5 }, (_, i) => ({
      eventId: `early-${i}`,
      name: "view",
      userId: "racer",
    }));
    expect((await stack.ingest({ events: stored }, { key: t.sdkKey })).status).toBe(202);
    await waitForEvents(stack.db, t.projectId, 5);

    await stack.stopBridge();
    const queued = [
      ...Array.from({ length: 20 }, (_, i) => ({
        eventId: `queued-${i}`,
        name: "purchase",
        userId: "racer",
      })),
      ...Array.from({ length: 4 }, (_, i) => ({
        eventId: `bystander-${i}`,
        name: "view",
        userId: "bystander",
      })),
    ];
    expect((await stack.ingest({ events: queued }, { key: t.sdkKey })).status).toBe(202);
    await waitFor(async () =>
      stack.logs.some((l) => l.includes("persist failed, will retry")) ? true : undefined,
    );

    const created = await call(stack, admin, "DELETE", `/v1/projects/${t.projectId}/events/users/racer`);
    expect(created.status).toBe(202);
    await runCron(stack, new Date(Date.now() + 60_000));
    const receipt = await call(stack, admin, "GET", `/v1/deletion-requests/${created.body.id}`);
    expect(receipt.body).toMatchObject({ status: "completed", deleted: { events: 5, users: 1 } });

    await stack.restartBridge();
    // The bystander's events arriving proves the queued message was processed, not still waiting.
    await waitForEvents(stack.db, t.projectId, 4, 30_000);
    await waitFor(async () =>
      stack.logs.some(
        (l) => l.includes("events persisted") && l.includes(t.projectId) && l.includes('"inserted":4'),
      )
        ? true
        : undefined,
    );
    const after = await snapshot(stack, t, "racer");
    expect(after).toMatchObject({ userEvents: 0, user: false, otherEvents: 4, otherUsers: 1 });
    // Dropped events are not counted either: only the 5 stored-then-erased views and the bystander's 4.
    expect(after.counts.reduce((sum, c) => sum + c.count, 0)).toBe(9);

    // A new event from the same user, received after the request, is new data and is kept (no suppression).
    expect(
      (await stack.ingest({ eventId: "later", name: "view", userId: "racer" }, { key: t.sdkKey })).status,
    ).toBe(202);
    await waitForEvents(stack.db, t.projectId, 5);
    expect((await snapshot(stack, t, "racer")).userEvents).toBe(1);
  });
});

describe("the persist rule, with the consumer running arbitrarily late", () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack({ consumer: "recorder" });
  });
  afterAll(() => stack?.dispose());

  test("a message received before the request is dropped even after the request completed; one received after is stored", async () => {
    const t = await createTenant(stack.db);
    const admin = await ownerKey(stack, t, "admin");
    const requestedAt = new Date("2026-03-01T12:00:00.000Z");
    const created = await call(
      stack,
      admin,
      "DELETE",
      `/v1/projects/${t.projectId}/events/users/late`,
      undefined,
      {
        "X-Layers-Test-Now": requestedAt.toISOString(),
      },
    );
    await runCron(stack, new Date("2026-03-01T12:05:00.000Z"));
    expect((await call(stack, admin, "GET", `/v1/deletion-requests/${created.body.id}`)).body.status).toBe(
      "completed",
    );

    const event = (eventId: string) => queuedEvent({ eventId, userId: "late", name: "view" });
    const before = await persistEvents(
      stack.db,
      eventsMessage(
        t,
        [event("before-1"), event("before-2"), queuedEvent({ eventId: "other", userId: "x" })],
        {
          receivedAt: "2026-03-01T11:59:59.999Z",
        },
      ),
    );
    expect(before).toMatchObject({ inserted: 1, erased: 2, insertedEventIds: ["other"] });
    // Exactly at the request's instant: still before it (the request covers everything received up to then).
    const same = await persistEvents(
      stack.db,
      eventsMessage(t, [event("same")], { receivedAt: requestedAt.toISOString() }),
    );
    expect(same).toMatchObject({ inserted: 0, erased: 1 });
    const after = await persistEvents(
      stack.db,
      eventsMessage(t, [event("after")], { receivedAt: "2026-03-01T12:00:00.001Z" }),
    );
    expect(after).toMatchObject({ inserted: 1, erased: 0 });
    const ids = (
      await stack.db
        .selectFrom("sdk_events")
        .select("event_id")
        .where("project_id", "=", t.projectId)
        .execute()
    )
      .map((r) => r.event_id)
      .sort();
    expect(ids).toEqual(["after", "other"]);
  });
});
