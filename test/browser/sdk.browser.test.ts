import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import type { Browser, BrowserContext, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { launchChromium } from "../support/chromium";
import { findInTables } from "../support/scan";
import { type Stack, startStack, waitFor } from "../support/stack";
import { createTenant } from "../support/tenant";

// The SDK's <script> bundle (sdk/dist/layers.min.js) in real headless Chromium, on a page served from one
// origin, sending to the real ingest and consumer Workers (workerd) on another origin, so CORS, IndexedDB,
// pagehide and keepalive are the browser's own. Between page and ingest a tiny proxy that records what
// left the page and can play an unreachable ingest.

const BUNDLE = join(import.meta.dirname, "../../sdk/dist/layers.min.js");

/** What the shop page's scripts leave on its global object (the callbacks below run in the page). */
interface OnPage {
  Layers: typeof import("../../sdk/src");
  layers: import("../../sdk/src").Layers;
  layersErrors: import("../../sdk/src").DeliveryError[];
}

interface Sent {
  method: string;
  /** Path and query, as the page asked for it. */
  url: string;
  headers: Record<string, string | string[] | undefined>;
  body: string;
  /** When the proxy got the request, and when and with what status it answered (ms since the epoch). */
  at: number;
  answeredAt?: number;
  status?: number;
  /** The ingest's own status when the request reached it (a failure played after forwarding included). */
  ingestStatus?: number;
}

/** An answer the proxy gives a POST instead of the ingest's, as a CORS-enabled ingest answer. */
interface Failure {
  status: number;
  headers?: Record<string, string>;
  /** Pass the request on to the ingest first (it stores the events), then answer `status` anyway. */
  forward: boolean;
  /** Never answer: the request stays in flight until the page cancels it. */
  hold?: boolean;
}

interface IngestProxy {
  url: string;
  /** Every request that reached the proxy (preflights included), in order. */
  sent: Sent[];
  /** "down": every connection is cut before an answer, as when the ingest is unreachable. */
  mode: "up" | "down";
  /** The next POSTs get these answers, one each, in order. */
  failures: Failure[];
  close(): Promise<void>;
}

function listen(server: Server): Promise<string> {
  return new Promise((resolve) =>
    server.listen(0, "127.0.0.1", () =>
      resolve(`http://127.0.0.1:${(server.address() as AddressInfo).port}`),
    ),
  );
}

function closeServer(server: Server): Promise<void> {
  server.closeAllConnections();
  return new Promise((resolve) => server.close(() => resolve()));
}

async function startIngestProxy(stack: Stack): Promise<IngestProxy> {
  const proxy = { sent: [] as Sent[], mode: "up" as IngestProxy["mode"], failures: [] as Failure[] };
  const toIngest = async (req: IncomingMessage, body: string) => {
    const headers: Record<string, string> = {};
    for (const [name, value] of Object.entries(req.headers)) {
      if (typeof value === "string" && !["host", "connection", "content-length"].includes(name))
        headers[name] = value;
    }
    const answer = await stack.mf.dispatchFetch(`http://ingest.test${req.url}`, {
      method: req.method,
      headers,
      ...(req.method !== "GET" && req.method !== "OPTIONS" && { body }),
      cf: { country: "DE", region: "Bavaria" },
    });
    return { status: answer.status, headers: Object.fromEntries(answer.headers), text: await answer.text() };
  };
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", async () => {
      const body = Buffer.concat(chunks).toString("utf8");
      const sent: Sent = {
        method: req.method ?? "",
        url: req.url ?? "",
        headers: { ...req.headers },
        body,
        at: Date.now(),
      };
      proxy.sent.push(sent);
      if (proxy.mode === "down") {
        req.socket.destroy();
        return;
      }
      const failure = req.method === "POST" ? proxy.failures.shift() : undefined;
      if (failure?.hold) return;
      let answer: { status: number; headers: Record<string, string>; text: string };
      if (failure) {
        if (failure.forward) sent.ingestStatus = (await toIngest(req, body)).status;
        answer = {
          status: failure.status,
          headers: {
            "Content-Type": "application/json",
            "Access-Control-Allow-Origin": "*",
            "Access-Control-Expose-Headers": "X-Request-Id,Retry-After",
            ...failure.headers,
          },
          text: JSON.stringify({ error: { code: `test_${failure.status}`, message: "played by the test" } }),
        };
      } else {
        answer = await toIngest(req, body);
        sent.ingestStatus = answer.status;
      }
      // Before the answer leaves: the page cannot have read it earlier than this.
      sent.answeredAt = Date.now();
      sent.status = answer.status;
      res.writeHead(answer.status, answer.headers);
      res.end(answer.text);
    });
  });
  const url = await listen(server);
  return Object.assign(proxy, { url, close: () => closeServer(server) });
}

/** The partner's page: the bundle by <script>, the SDK created with the options in the page's query. */
async function startSite(): Promise<{ url: string; close(): Promise<void> }> {
  const bundle = readFileSync(BUNDLE, "utf8");
  const page = `<!doctype html><html><head><script src="/layers.min.js"></script><script>
    const params = new URLSearchParams(location.search);
    window.layersErrors = [];
    window.layers = Layers.createLayers({
      key: params.get("key"),
      endpoint: params.get("endpoint"),
      flushInterval: Number(params.get("flushInterval") ?? 10000),
      retry: { baseMs: 100, maxMs: 300 },
      onError: (e) => window.layersErrors.push(e),
    });
  </script></head><body>shop</body></html>`;
  const server = createServer((req, res) => {
    const path = new URL(req.url ?? "/", "http://site").pathname;
    if (path === "/layers.min.js") {
      res.writeHead(200, { "Content-Type": "text/javascript" });
      res.end(bundle);
    } else if (path === "/shop") {
      // A first-party cookie on the page's host: the SDK's requests must not carry it to the ingest.
      res.writeHead(200, { "Content-Type": "text/html", "Set-Cookie": "session=secret-session; Path=/" });
      res.end(page);
    } else {
      res.writeHead(200, { "Content-Type": "text/html" });
      res.end("<!doctype html><p>elsewhere</p>");
    }
  });
  const url = await listen(server);
  return { url, close: () => closeServer(server) };
}

async function countsById(stack: Stack, projectId: string): Promise<Record<string, number>> {
  const rows = await stack.db
    .selectFrom("sdk_events")
    .select(["event_id", (eb) => eb.fn.countAll<string>().as("n")])
    .where("project_id", "=", projectId)
    .groupBy("event_id")
    .execute();
  return Object.fromEntries(rows.map((r) => [r.event_id, Number(r.n)]));
}

/** Waits until every id is stored, then returns the project's count per event id. */
async function waitForIds(stack: Stack, projectId: string, ids: string[]) {
  return waitFor(async () => {
    const counts = await countsById(stack, projectId);
    return ids.every((id) => counts[id]) ? counts : undefined;
  }, 30_000);
}

/**
 * Waits until the consumer has handled every batch the ingest accepted for the project among `requests`
 * (one queue message per request at these sizes), so a duplicate row would be in the table by then.
 */
async function waitForConsumer(projectId: string, requests: Sent[]) {
  const accepted = requests.filter((r) => r.method === "POST" && r.ingestStatus === 202).length;
  await waitFor(async () => {
    const handled = stack.logs.filter((l) => l.includes("events persisted") && l.includes(projectId));
    return handled.length >= accepted ? true : undefined;
  }, 30_000);
}

const eventIdsIn = (sent: Sent[]): string[] =>
  sent
    .filter((s) => s.method === "POST")
    .flatMap((s) => (JSON.parse(s.body) as { events: { eventId: string }[] }).events.map((e) => e.eventId));

let stack: Stack;
let proxy: IngestProxy;
let site: Awaited<ReturnType<typeof startSite>>;
let browser: Browser;
beforeAll(async () => {
  // CI builds the SDK before the tests; a local run without a build gets one here.
  if (!existsSync(BUNDLE)) execFileSync("npm", ["run", "build:sdk"], { stdio: "inherit" });
  stack = await startStack();
  proxy = await startIngestProxy(stack);
  site = await startSite();
  browser = await launchChromium();
});
afterAll(async () => {
  await browser?.close();
  await site?.close();
  await proxy?.close();
  await stack?.dispose();
});

/** A fresh browser context (own cookies, own IndexedDB) on the shop page, set up for this tenant. */
async function openShop(key: string, flushInterval = 100): Promise<{ context: BrowserContext; page: Page }> {
  const context = await browser.newContext();
  const page = await context.newPage();
  const query = new URLSearchParams({ key, endpoint: proxy.url, flushInterval: String(flushInterval) });
  await page.goto(`${site.url}/shop?${query}`);
  return { context, page };
}

describe("SDK <script> bundle in Chromium → ingest → consumer → Postgres", () => {
  test("events tracked on the page are stored; sent cross-origin without cookies", async () => {
    const t = await createTenant(stack.db);
    const { context, page } = await openShop(t.sdkKey);
    expect(await context.cookies(site.url)).toEqual([expect.objectContaining({ name: "session" })]);
    const seen = proxy.sent.length;
    const ids = await page.evaluate(async () => {
      const l = (globalThis as unknown as OnPage).layers;
      const out = [l.page(), l.track("add_to_cart", { sku: "A-1", value: 19.9 })];
      await l.flush();
      return out;
    });
    expect(await page.evaluate(() => (globalThis as unknown as OnPage).layersErrors)).toEqual([]);
    const counts = await waitForIds(stack, t.projectId, ids as string[]);
    expect(counts).toEqual(Object.fromEntries(ids.map((id) => [id, 1])));
    const requests = proxy.sent.slice(seen);
    // A real CORS exchange: the browser asked first (Authorization is not a simple header), from the page's origin.
    expect(requests.map((r) => r.method)).toEqual(["OPTIONS", "POST"]);
    for (const r of requests) {
      expect(r.headers.origin).toBe(site.url);
      expect(r.headers.cookie).toBeUndefined();
    }
    await context.close();
  });

  test("offline, reload, online: the events kept in IndexedDB are stored exactly once", async () => {
    const t = await createTenant(stack.db);
    const { context, page } = await openShop(t.sdkKey);
    let ids: string[];
    proxy.mode = "down";
    try {
      ids = (await page.evaluate(async () => {
        const l = (globalThis as unknown as OnPage).layers;
        const out = [l.track("view_item", { i: 1 }), l.track("view_item", { i: 2 }), l.track("checkout")];
        await l.flush(); // fails: the ingest is unreachable
        return out;
      })) as string[];
      // At least that one failure; its retry (100–300 ms later here) may have failed too by now.
      const errors = await page.evaluate(() => (globalThis as unknown as OnPage).layersErrors);
      expect(errors.length).toBeGreaterThanOrEqual(1);
      for (const e of errors) expect(e).toMatchObject({ code: "network_error", stopped: false });
      // The queue is in IndexedDB (the SDK's default storage) before the page goes away.
      const queueKey = `layers.${t.sdkKey.slice(-8)}.queue`;
      await waitFor(async () => {
        const stored = await page.evaluate(
          (k) => (globalThis as unknown as OnPage).Layers.indexedDbStorage().getItem(k),
          queueKey,
        );
        return stored && ids.every((id) => stored.includes(id)) ? true : undefined;
      });
      await page.reload();
      const afterReload = proxy.sent.length;
      // The reloaded page retries on its own from storage: wait for it to have tried while still down.
      await waitFor(async () => (proxy.sent.length > afterReload ? true : undefined));
      expect(await countsById(stack, t.projectId)).toEqual({});
    } finally {
      proxy.mode = "up";
    }
    const counts = await waitForIds(stack, t.projectId, ids);
    expect(counts).toEqual(Object.fromEntries(ids.map((id) => [id, 1])));
    await context.close();
  });

  test("ads consent refused: the device ad id and the AdServices token never leave the page", async () => {
    const t = await createTenant(stack.db);
    const { context, page } = await openShop(t.sdkKey);
    const idfa = "6D92078A-8246-4BA4-AE5B-76104861E7DC";
    const token = `adservices-token-${t.projectId}`;
    const seen = proxy.sent.length;
    const id = await page.evaluate(
      async ({ idfa, token }) => {
        const l = (globalThis as unknown as OnPage).layers;
        l.setConsent({ ads: false });
        l.setDevice({ os: "iOS", idfa });
        l.setAdServicesToken(token);
        const eventId = l.track("purchase", { value: 5 });
        await l.flush();
        return eventId;
      },
      { idfa, token },
    );
    expect(await waitForIds(stack, t.projectId, [id as string])).toEqual({ [id as string]: 1 });
    const posts = proxy.sent.slice(seen).filter((r) => r.method === "POST");
    expect(posts).toHaveLength(1);
    // The SDK sends the refusal with the event and leaves out what only the ad platforms use: no request
    // carries the ad id or the token (the ingest would drop them too, README Privacy).
    expect(JSON.parse(posts[0]!.body).events[0]).toMatchObject({ eventId: id, consent: { ads: false } });
    for (const request of proxy.sent.slice(seen)) {
      expect(request.body).not.toContain(idfa);
      expect(request.body).not.toContain(token);
    }
    // The scan sees the stored event (its id), and neither the ad id nor the token.
    const hits = await findInTables(stack.db, [id as string, idfa, token]);
    expect(hits).toContain(`sdk_events: ${id}`);
    expect(hits.filter((hit) => !hit.endsWith(`: ${id}`))).toEqual([]);
    await context.close();
  });

  test.each([
    ["navigated away from", (page: Page) => page.goto(`${site.url}/elsewhere`)],
    ["closed", (page: Page) => page.close({ runBeforeUnload: true })],
  ])("a first visit %s before flushInterval: the pagehide request (key in the URL, no preflight) delivers the events", async (_how, leave) => {
    const t = await createTenant(stack.db);
    const seen = proxy.sent.length;
    // A fresh profile and a page that has sent nothing, so no CORS preflight is cached for the ingest.
    const { context, page } = await openShop(t.sdkKey, 600_000);
    const ids = (await page.evaluate(async () => {
      const l = (globalThis as unknown as OnPage).layers;
      // Once storage is read: events tracked before that are sent as soon as it is (with what it held).
      // An ordinary request still in flight at pagehide is covered too (unit test, web.test.ts).
      await l.ready;
      return [l.page(), l.track("view_item"), l.track("add_to_cart")];
    })) as string[];
    expect(proxy.sent.length).toBe(seen); // nothing sent yet: the flush interval is ten minutes
    await leave(page);
    const counts = await waitForIds(stack, t.projectId, ids);
    await waitForConsumer(t.projectId, proxy.sent.slice(seen));
    expect(await countsById(stack, t.projectId)).toEqual(Object.fromEntries(ids.map((id) => [id, 1])));
    expect(counts).toEqual(Object.fromEntries(ids.map((id) => [id, 1])));
    // One CORS "simple" request: no preflight, the publishable key in the URL, a text/plain body, no cookie.
    const requests = proxy.sent.slice(seen);
    expect(requests.map((r) => r.method)).toEqual(["POST"]);
    expect(requests[0]!.url).toBe(`/l/events?key=${t.sdkKey}`);
    expect(requests[0]!.headers["content-type"]).toBe("text/plain;charset=UTF-8");
    expect(requests[0]!.headers.authorization).toBeUndefined();
    expect(requests[0]!.headers.cookie).toBeUndefined();
    expect(eventIdsIn(requests)).toEqual(ids);
    await context.close();
  });

  test("an ordinary request in flight when the page goes: its events ride in the pagehide request, stored once", async () => {
    const t = await createTenant(stack.db);
    const { context, page } = await openShop(t.sdkKey, 600_000);
    const seen = proxy.sent.length;
    proxy.failures.push({ status: 0, forward: false, hold: true });
    const ids = (await page.evaluate(async () => {
      const l = (globalThis as unknown as OnPage).layers;
      await l.ready;
      const out = [l.track("view_item"), l.track("add_to_cart")];
      void l.flush(); // its POST reaches the proxy and gets no answer
      return out;
    })) as string[];
    const posts = () => proxy.sent.slice(seen).filter((r) => r.method === "POST");
    await waitFor(async () => (posts().length === 1 ? true : undefined));
    // Leaving cancels that request; the pagehide request must carry its events.
    await page.goto(`${site.url}/elsewhere`);
    await waitForIds(stack, t.projectId, ids);
    await waitForConsumer(t.projectId, proxy.sent.slice(seen));
    expect(await countsById(stack, t.projectId)).toEqual(Object.fromEntries(ids.map((id) => [id, 1])));
    expect(posts().map((r) => r.url)).toEqual(["/l/events", `/l/events?key=${t.sdkKey}`]);
    expect(eventIdsIn([posts()[1]!])).toEqual(ids);
    await context.close();
  });

  test("a 503 storm, then recovery: every event stored exactly once, under the ids it was tracked with", async () => {
    const t = await createTenant(stack.db);
    const { context, page } = await openShop(t.sdkKey);
    const seen = proxy.sent.length;
    // Six 503s in a row; every other one after the ingest had already queued the batch (the answer was
    // lost on its way back), so the retries carry events that are stored already.
    const storm = [true, false, true, false, true, false].map((forward) => ({ status: 503, forward }));
    proxy.failures.push(...storm);
    const first = (await page.evaluate(() => {
      const l = (globalThis as unknown as OnPage).layers;
      return [l.track("view_item", { i: 1 }), l.track("view_item", { i: 2 }), l.track("checkout")];
    })) as string[];
    // Mid-storm, more events join the queue.
    await waitFor(async () => (proxy.failures.length <= 3 ? true : undefined));
    const second = (await page.evaluate(() => {
      const l = (globalThis as unknown as OnPage).layers;
      return [l.track("add_payment_info"), l.track("purchase", { value: 42 })];
    })) as string[];
    const ids = [...first, ...second];
    await waitForIds(stack, t.projectId, ids);
    const posts = () => proxy.sent.slice(seen).filter((r) => r.method === "POST");
    // Settled once every event has had a 202 from the ingest and the consumer has handled every batch the
    // ingest queued (a duplicate row would be in the table by then).
    await waitFor(async () => {
      const delivered = posts().filter((r) => r.status === 202);
      return ids.every((id) => eventIdsIn(delivered).includes(id)) ? true : undefined;
    });
    await waitForConsumer(t.projectId, proxy.sent.slice(seen));
    expect(proxy.failures).toEqual([]);
    expect(await countsById(stack, t.projectId)).toEqual(Object.fromEntries(ids.map((id) => [id, 1])));
    expect(posts().filter((r) => r.status === 503)).toHaveLength(6);
    // Sent again and again, and always under the ids given at track(): never a new id.
    expect(new Set(eventIdsIn(posts()))).toEqual(new Set(ids));
    expect(eventIdsIn(posts()).filter((id) => id === first[0]).length).toBeGreaterThan(6);
    const errors = await page.evaluate(() => (globalThis as unknown as OnPage).layersErrors);
    expect(errors).toHaveLength(6);
    for (const e of errors) expect(e).toMatchObject({ status: 503, stopped: false });
    await context.close();
  });

  test("429 with Retry-After: nothing is sent before the delay has passed, then every event is delivered", async () => {
    const t = await createTenant(stack.db);
    const { context, page } = await openShop(t.sdkKey);
    const seen = proxy.sent.length;
    proxy.failures.push({ status: 429, headers: { "Retry-After": "2" }, forward: false });
    const ids = (await page.evaluate(async () => {
      const l = (globalThis as unknown as OnPage).layers;
      const out = [l.track("view_item"), l.track("add_to_cart")];
      await l.flush(); // answered 429
      // Tracked and flushed during the wait: it waits too (the retries' 100 ms backoff does not apply).
      out.push(l.track("checkout"));
      await l.flush();
      return out;
    })) as string[];
    await waitForIds(stack, t.projectId, ids as string[]);
    const posts = proxy.sent.slice(seen).filter((r) => r.method === "POST");
    expect(posts.map((r) => r.status)).toEqual([429, 202]);
    // The second request left the page no sooner than 2 s after the 429 was answered.
    expect(posts[1]!.at - posts[0]!.answeredAt!).toBeGreaterThanOrEqual(2000);
    expect(eventIdsIn([posts[1]!])).toEqual(ids);
    expect(await page.evaluate(() => (globalThis as unknown as OnPage).layersErrors)).toEqual([
      expect.objectContaining({ status: 429, stopped: false }),
    ]);
    await context.close();
  });
});
