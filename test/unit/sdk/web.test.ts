import { afterEach, beforeEach, describe, expect, test } from "vitest";
import { memoryStorage } from "../../../sdk/src";
import { sdkEventSchema } from "../../../shared/schemas/sdk-event";
import { ENDPOINT, KEY, settle } from "./harness";
import { setup } from "./setup";

// A page's globals on Node's EventTarget: enough for the SDK's browser paths (location, pagehide,
// visibilitychange). The real-browser run (Chromium) is a separate, later suite.
const g = globalThis as unknown as Record<string, unknown>;
let doc: EventTarget & { visibilityState: string };

beforeEach(() => {
  const win = new EventTarget();
  doc = Object.assign(new EventTarget(), { visibilityState: "visible" });
  g.location = { href: "https://shop.example.com/checkout/pay?email=jane%40example.com&token=s3cret#card" };
  g.document = doc;
  g.addEventListener = win.addEventListener.bind(win);
  g.removeEventListener = win.removeEventListener.bind(win);
  g.dispatchEvent = win.dispatchEvent.bind(win);
});
afterEach(() => {
  for (const name of ["location", "document", "addEventListener", "removeEventListener", "dispatchEvent"])
    delete g[name];
});

const hide = () => (g.dispatchEvent as (e: Event) => boolean)(new Event("pagehide"));

describe("SDK on a web page", () => {
  test("each event carries the page URL without query, fragment or credentials; page() stores no path", async () => {
    const { layers, ingest } = setup();
    layers.track("add_to_cart");
    layers.page({ section: "checkout" });
    (g.location as { href: string }).href = "https://user:pw@shop.example.com/done";
    layers.track("purchase");
    await layers.flush();
    const [cart, view, purchase] = ingest.requests[0]!.events;
    expect(cart!.pageUrl).toBe("https://shop.example.com/checkout/pay");
    // Properties are stored: only the partner's go there (a path can hold ids and tokens).
    expect(view).toMatchObject({ name: "page_view", properties: { section: "checkout" } });
    expect(view!.properties).toEqual({ section: "checkout" });
    expect(view!.pageUrl).toBe("https://shop.example.com/checkout/pay");
    expect(purchase!.pageUrl).toBe("https://shop.example.com/done");
    for (const e of [cart, view, purchase]) expect(sdkEventSchema.strict().safeParse(e).success).toBe(true);
  });

  test("no page URL where the ingest would refuse it (not http(s), over 2,048 characters)", async () => {
    const { layers, ingest } = setup();
    (g.location as { href: string }).href = "file:///C:/site/index.html";
    layers.track("a");
    (g.location as { href: string }).href = `https://example.com/${"p".repeat(2_100)}`;
    layers.track("b");
    await layers.flush();
    for (const e of ingest.requests[0]!.events) expect(e).not.toHaveProperty("pageUrl");
  });

  test("pagehide sends one keepalive request within the browser's 64 KiB; the rest waits its turn", async () => {
    const { layers, ingest } = setup({ flushAt: 100 });
    await layers.ready;
    const ids = Array.from({ length: 10 }, (_, i) => layers.track("big", { i, text: "x".repeat(10_000) }));
    hide();
    await settle();
    expect(ingest.requests).toHaveLength(1);
    const keepalive = ingest.requests[0]!;
    expect(keepalive.init.keepalive).toBe(true);
    expect(keepalive.init.credentials).toBe("omit");
    // A CORS "simple" request, so no preflight has to go first from a closing page: the publishable key in
    // the URL, no header of ours (fetch sends a string body as text/plain;charset=UTF-8).
    expect(keepalive.url).toBe(`${ENDPOINT}/l/events?key=${KEY}`);
    expect(keepalive.init.headers).toEqual({});
    expect(keepalive.bodyBytes).toBeLessThanOrEqual(64 * 1024);
    expect(keepalive.events.length).toBe(6);
    await layers.flush();
    expect(ingest.ids()).toEqual(ids);
  });

  test("pagehide while an ordinary request is in flight: its events ride in the keepalive request too", async () => {
    // The browser cancels the ordinary request when the page unloads; the keepalive one survives. Both may
    // arrive: the ingest dedupes on eventId.
    const { layers, ingest, clock } = setup({
      flushAt: 100,
      answer: (request) =>
        request.init.keepalive ? { status: 202, body: { accepted: 2, rejected: [] } } : "hang",
    });
    await layers.ready;
    const ids = [layers.track("a"), layers.track("b")];
    void layers.flush();
    await settle();
    expect(ingest.requests.map((r) => r.init.keepalive)).toEqual([false]);
    hide();
    await settle();
    expect(ingest.requests.map((r) => r.init.keepalive)).toEqual([false, true]);
    expect(ingest.requests[1]!.events.map((e) => e.eventId)).toEqual(ids);
    // visibilitychange→hidden after pagehide sends nothing more: nothing is left outside a keepalive request.
    doc.visibilityState = "hidden";
    doc.dispatchEvent(new Event("visibilitychange"));
    await settle();
    expect(ingest.requests).toHaveLength(2);
    // The cancelled request's failure sends nothing again: the keepalive answer settled its events.
    await clock.advance(60_000);
    await settle();
    expect(ingest.requests).toHaveLength(2);
  });

  test("visibilitychange to hidden sends too; becoming visible does not", async () => {
    const { layers, ingest } = setup({ flushAt: 100 });
    await layers.ready;
    layers.track("a");
    doc.dispatchEvent(new Event("visibilitychange"));
    await settle();
    expect(ingest.requests).toHaveLength(0);
    doc.visibilityState = "hidden";
    doc.dispatchEvent(new Event("visibilitychange"));
    await settle();
    expect(ingest.requests).toHaveLength(1);
    expect(ingest.requests[0]!.init.keepalive).toBe(true);
  });

  test("a keepalive request whose answer never came is sent again by the next page, with the same ids", async () => {
    const storage = memoryStorage();
    const before = setup({ storage, flushAt: 100, answer: () => "hang" });
    await before.layers.ready;
    const ids = [before.layers.track("a"), before.layers.track("b")];
    hide(); // the page is gone: the request may or may not have reached the ingest
    await settle();
    const after = setup({ storage });
    await after.layers.ready;
    await after.layers.flush();
    // The ingest dedupes on eventId, so sending again stores each event once.
    expect(after.ingest.ids()).toEqual(ids);
  });

  test("shutdown() removes the page listeners", async () => {
    const { layers, ingest } = setup({ flushAt: 100 });
    await layers.shutdown();
    layers.track("a");
    hide();
    await settle();
    expect(ingest.requests).toHaveLength(0);
  });
});
