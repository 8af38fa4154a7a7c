import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { type Browser, type BrowserContext, chromium, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { findInTables } from "../support/scan";
import { type Stack, startStack, waitFor } from "../support/stack";
import { createTenant } from "../support/tenant";

// The SDK's <script> bundle (sdk/dist/layers.min.js) in real headless Chromium, on a page served from one
// origin, sending to the real ingest and consumer Workers (workerd) on another origin, so CORS, IndexedDB,
// pagehide and keepalive are the browser's own. Between page and ingest a tiny proxy that records what
// left the page and can play an unreachable ingest.

const BUNDLE = join(import.meta.dirname, "../../sdk/dist/layers.min.js");
// Chromium flags for a closed network (GUIDE section 6): no background traffic, no QUIC, no sandbox (root).
const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

/** What the shop page's scripts leave on its global object (the callbacks below run in the page). */
interface OnPage {
  Layers: typeof import("../../sdk/src");
  layers: import("../../sdk/src").Layers;
  layersErrors: import("../../sdk/src").DeliveryError[];
}

interface Sent {
  method: string;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

interface IngestProxy {
  url: string;
  /** Every request that reached the proxy (preflights included), in order. */
  sent: Sent[];
  /** "down": every connection is cut before an answer, as when the ingest is unreachable. */
  mode: "up" | "down";
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
  const proxy = { sent: [] as Sent[], mode: "up" as IngestProxy["mode"] };
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", async () => {
      const body = Buffer.concat(chunks).toString("utf8");
      proxy.sent.push({ method: req.method ?? "", headers: { ...req.headers }, body });
      if (proxy.mode === "down") {
        req.socket.destroy();
        return;
      }
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
      const text = await answer.text();
      res.writeHead(answer.status, Object.fromEntries(answer.headers));
      res.end(text);
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
  // launch() gives Chromium a fresh profile directory of its own and removes it on close().
  browser = await chromium.launch({ executablePath: "/usr/bin/chromium", args: CHROMIUM_ARGS });
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
      expect(await page.evaluate(() => (globalThis as unknown as OnPage).layersErrors)).toEqual([
        expect.objectContaining({ code: "network_error", stopped: false }),
      ]);
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

  test("the page goes away before flushInterval: the pagehide keepalive request delivers the events", async () => {
    const t = await createTenant(stack.db);
    const { context, page } = await openShop(t.sdkKey, 600_000);
    // A first flush while the page is open: the browser caches the ingest's CORS preflight (Access-Control-
    // Max-Age), as on any page that sent before. Without it Chromium sends the keepalive request's preflight
    // once the page is gone but never the POST after it: the events wait in IndexedDB for the next visit.
    const first = await page.evaluate(async () => {
      const l = (globalThis as unknown as OnPage).layers;
      const id = l.page();
      await l.flush();
      return id;
    });
    await waitForIds(stack, t.projectId, [first as string]);
    const seen = proxy.sent.length;
    const ids = (await page.evaluate(() => {
      const l = (globalThis as unknown as OnPage).layers;
      return [l.track("view_item"), l.track("add_to_cart")];
    })) as string[];
    expect(proxy.sent.length).toBe(seen); // nothing sent yet: the flush interval is ten minutes
    await page.goto(`${site.url}/elsewhere`);
    const counts = await waitForIds(stack, t.projectId, ids);
    expect(counts).toEqual(Object.fromEntries([first as string, ...ids].map((id) => [id, 1])));
    const posts = proxy.sent.slice(seen);
    expect(posts.map((r) => r.method)).toEqual(["POST"]);
    expect(eventIdsIn(posts)).toEqual(ids);
    await context.close();
  });
});
