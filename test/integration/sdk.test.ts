import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { createLayers, type DeliveryError, memoryStorage } from "../../sdk/src";
import type { Db } from "../../shared/db";
import { waitForEvents } from "../support/rows";
import { sha256 } from "../support/sha256";
import { type Stack, startStack, waitFor } from "../support/stack";
import { createTenant } from "../support/tenant";

// The SDK in Node, over real HTTP, against the real ingest and consumer Workers (workerd) and Postgres.
// Between them a tiny proxy that can lose the ingest's answer: the request reached the ingest and the
// events were queued, but the SDK saw a 503 — the case where only the event ids keep delivery exactly-once.

interface Proxy {
  url: string;
  /** Event ids of every request that passed through, in order. */
  requests: string[][];
  /** How to treat the next requests: "pass", or "lose-answer" (forward, then answer 503). */
  faults: ("pass" | "lose-answer")[];
  close(): Promise<void>;
}

async function startProxy(stack: Stack): Promise<Proxy> {
  const requests: string[][] = [];
  const faults: Proxy["faults"] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", async () => {
      const body = Buffer.concat(chunks).toString("utf8");
      requests.push((JSON.parse(body) as { events: { eventId: string }[] }).events.map((e) => e.eventId));
      const headers: Record<string, string> = {};
      for (const name of ["authorization", "content-type", "user-agent"]) {
        const value = req.headers[name];
        if (typeof value === "string") headers[name] = value;
      }
      const answer = await stack.mf.dispatchFetch(`http://ingest.test${req.url}`, {
        method: req.method,
        headers,
        body,
        cf: { country: "DE", region: "Bavaria" },
      });
      const text = await answer.text();
      if ((faults.shift() ?? "pass") === "lose-answer") {
        res.writeHead(503, { "Content-Type": "application/json" });
        res.end(
          JSON.stringify({ error: { code: "queue_unavailable", message: "answer lost (test proxy)" } }),
        );
        return;
      }
      res.writeHead(answer.status, Object.fromEntries(answer.headers));
      res.end(text);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    faults,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

async function dailyCount(db: Db, projectId: string): Promise<number> {
  const rows = await db
    .selectFrom("event_daily_counts")
    .select("count")
    .where("project_id", "=", projectId)
    .execute();
  return rows.reduce((sum, r) => sum + Number(r.count), 0);
}

let stack: Stack;
let proxy: Proxy;
beforeAll(async () => {
  stack = await startStack();
  proxy = await startProxy(stack);
});
afterAll(async () => {
  await proxy?.close();
  await stack?.dispose();
});

describe("SDK → ingest → consumer → Postgres", () => {
  test("identify + track + flush: rows under the SDK's event ids, user and hashed email", async () => {
    const t = await createTenant(stack.db);
    const errors: DeliveryError[] = [];
    const layers = createLayers({
      key: t.sdkKey,
      endpoint: proxy.url,
      storage: memoryStorage(),
      appId: "com.example.shop",
      onError: (e) => errors.push(e),
    });
    const identifyId = layers.identify("user-42", { email: " Jane@Example.com ", phone: "+49 170 1234567" });
    const purchaseId = layers.track("purchase", { value: 19.9, currency: "EUR" });
    await layers.flush();
    await layers.shutdown();
    expect(errors).toEqual([]);

    const rows = await waitForEvents(stack.db, t.projectId, 2);
    expect(rows.map((r) => r.event_id).sort()).toEqual([identifyId, purchaseId].sort());
    const purchase = rows.find((r) => r.event_id === purchaseId)!;
    expect(purchase).toMatchObject({
      name: "purchase",
      user_id: "user-42",
      app_id: "com.example.shop",
      email_sha256: sha256("jane@example.com"),
      phone_sha256: sha256("491701234567"),
      country: "DE",
      properties: { value: 19.9, currency: "EUR" },
    });
  });

  test("anonymous events, identify, reset: the server stores the anonymous id and links it to the user once", async () => {
    const t = await createTenant(stack.db);
    const layers = createLayers({ key: t.sdkKey, endpoint: proxy.url, storage: memoryStorage() });
    await layers.ready;
    const firstAnonymousId = layers.anonymousId;
    const browseId = layers.track("browse");
    const identifyId = layers.identify("user-77");
    const buyId = layers.track("purchase");
    layers.reset(); // logout: a new anonymous id, never linked to user-77
    const afterId = layers.track("browse");
    await layers.flush();
    await layers.shutdown();

    const rows = await waitForEvents(stack.db, t.projectId, 4);
    const byId = new Map(rows.map((r) => [r.event_id, r]));
    expect(byId.get(browseId!)).toMatchObject({ user_id: null, anonymous_id: firstAnonymousId });
    expect(byId.get(identifyId!)).toMatchObject({ user_id: "user-77", anonymous_id: firstAnonymousId });
    expect(byId.get(buyId!)).toMatchObject({ user_id: "user-77", anonymous_id: firstAnonymousId });
    expect(byId.get(afterId!)).toMatchObject({ user_id: null, anonymous_id: layers.anonymousId });
    expect(layers.anonymousId).not.toBe(firstAnonymousId);
    const links = await stack.db
      .selectFrom("sdk_identity_links")
      .select(["anonymous_id", "user_id"])
      .where("project_id", "=", t.projectId)
      .execute();
    expect(links).toEqual([{ anonymous_id: firstAnonymousId, user_id: "user-77" }]);
  });

  test("an answer lost after the ingest queued the batch: the SDK retries, every event is stored once", async () => {
    const t = await createTenant(stack.db);
    const errors: DeliveryError[] = [];
    const layers = createLayers({
      key: t.sdkKey,
      endpoint: proxy.url,
      storage: memoryStorage(),
      retry: { baseMs: 50, maxMs: 200 },
      onError: (e) => errors.push(e),
    });
    const seen = proxy.requests.length;
    proxy.faults.push("lose-answer");
    const ids = Array.from({ length: 5 }, (_, i) => layers.track("view_item", { i }));
    await layers.flush(); // 503 (the events were queued all the same)
    expect(errors).toEqual([
      expect.objectContaining({ code: "queue_unavailable", status: 503, stopped: false }),
    ]);
    // The retry comes after the backoff, by itself, with the same ids.
    await waitFor(async () => (proxy.requests.length >= seen + 2 ? true : undefined));
    expect(proxy.requests.slice(seen)).toEqual([ids, ids]);
    await layers.shutdown();

    // Both copies reached the consumer: wait until it has processed the second, then count.
    await waitFor(async () =>
      stack.logs.filter((l) => l.includes(t.projectId) && l.includes("events persisted")).length >= 2
        ? true
        : undefined,
    );
    const rows = await waitForEvents(stack.db, t.projectId, 5);
    expect(rows.map((r) => r.event_id).sort()).toEqual([...ids].sort());
    expect(await dailyCount(stack.db, t.projectId)).toBe(5);
  });

  test("a revoked or wrong key stops the SDK with unauthorized and keeps its events", async () => {
    const errors: DeliveryError[] = [];
    const layers = createLayers({
      key: "lp_pk_0000000000000000000000000000000X",
      endpoint: proxy.url,
      storage: memoryStorage(),
      onError: (e) => errors.push(e),
    });
    layers.track("a");
    await layers.flush();
    expect(errors).toEqual([expect.objectContaining({ code: "unauthorized", status: 401, stopped: true })]);
    await layers.shutdown();
  });
});
