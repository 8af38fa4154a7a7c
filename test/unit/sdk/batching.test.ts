import { describe, expect, test } from "vitest";
import { createLayers, LIMITS } from "../../../sdk/src";
import { utf8Length } from "../../../sdk/src/limits";
import { INGEST_LIMITS } from "../../../shared/limits";
import { sdkEventSchema } from "../../../shared/schemas/sdk-event";
import { ENDPOINT, KEY, settle } from "./harness";
import { setup } from "./setup";

describe("SDK events and batches", () => {
  test("its limits are the ingest's", () => {
    const { maxKeepaliveBytes, ...shared } = LIMITS;
    expect(maxKeepaliveBytes).toBe(64 * 1024);
    for (const [name, value] of Object.entries(shared)) {
      expect(INGEST_LIMITS[name as keyof typeof INGEST_LIMITS], name).toBe(value);
    }
  });

  test("a bad key or endpoint fails at once, with what to fix", () => {
    expect(() => createLayers({ key: "pk_wrong", endpoint: ENDPOINT })).toThrow(/lp_pk_/);
    expect(() => createLayers({ key: KEY, endpoint: "ingest.test" })).toThrow(/endpoint/);
  });

  test("every field the SDK sets passes the ingest's schema, and no field it would ignore is sent", async () => {
    const { layers, ingest } = setup({ flushAt: 100, appId: "com.example.app" });
    await layers.ready;
    layers.setConsent({ ads: true });
    layers.setDevice({
      os: "iOS",
      osVersion: "17.5",
      model: "iPhone15,2",
      idfa: "6D92078A-8246-4BA4-AE5B-76104861E7DC",
    });
    layers.setAdServicesToken("token-abc");
    layers.identify("user-1", { email: "jane@example.com", phone: "0170 1234567", phoneCountry: "DE" });
    layers.track("purchase", { value: 9.99, currency: "EUR", items: [{ sku: "a", qty: 2 }], note: null });
    await layers.flush();

    const [identify, purchase] = ingest.requests[0]!.events;
    for (const event of [identify, purchase]) {
      const strict = sdkEventSchema.strict().safeParse(event);
      expect(strict.success, JSON.stringify(strict.error?.issues)).toBe(true);
    }
    expect(identify).toMatchObject({
      name: "identify",
      userId: "user-1",
      email: "jane@example.com",
      phone: "0170 1234567",
      phoneCountry: "DE",
      appId: "com.example.app",
      consent: { ads: true },
      adServicesToken: "token-abc",
    });
    // The AdServices token goes with one event only; identity and device go with every event.
    expect(purchase).not.toHaveProperty("adServicesToken");
    expect(purchase).toMatchObject({
      name: "purchase",
      userId: "user-1",
      email: "jane@example.com",
      device: { os: "iOS", idfa: "6D92078A-8246-4BA4-AE5B-76104861E7DC" },
      properties: { value: 9.99, currency: "EUR", items: [{ sku: "a", qty: 2 }], note: null },
    });
    expect(identify!.eventId).not.toBe(purchase!.eventId);
  });

  test("the request: POST {endpoint}/l/events, the key as Bearer, no cookies, sentAt per send", async () => {
    const { layers, ingest, clock } = setup({ flushAt: 2 });
    const first = layers.track("a");
    await clock.advance(5_000);
    const second = layers.track("b");
    await settle();
    expect(ingest.requests).toHaveLength(1);
    const request = ingest.requests[0]!;
    expect(request.url).toBe("https://ingest.test/l/events");
    expect(request.init).toMatchObject({
      method: "POST",
      credentials: "omit",
      keepalive: false,
      headers: { Authorization: `Bearer ${KEY}`, "Content-Type": "application/json" },
    });
    expect(request.events.map((e) => e.eventId)).toEqual([first, second]);
    // timestamp: when track was called; sentAt: when the request left (the ingest corrects skew with both).
    expect(request.events[1]!.timestamp - request.events[0]!.timestamp).toBe(5_000);
    expect(request.sentAt).toBe(clock.now());
  });

  test("flushAt sends at once; fewer events wait for flushInterval", async () => {
    const { layers, ingest, clock } = setup({ flushAt: 3, flushInterval: 10_000 });
    layers.track("a");
    layers.track("b");
    await clock.advance(9_999);
    expect(ingest.requests).toHaveLength(0);
    await clock.advance(1);
    expect(ingest.requests).toHaveLength(1);
    layers.track("c");
    layers.track("d");
    layers.track("e");
    await settle();
    expect(ingest.requests.map((r) => r.events.length)).toEqual([2, 3]);
  });

  test("a large queue goes out in requests of at most 500 events", async () => {
    const { layers, ingest } = setup({ flushAt: 500, maxQueueSize: 5_000 });
    await layers.ready;
    for (let i = 0; i < 1_200; i++) layers.track("tick", { i });
    await layers.flush();
    expect(ingest.requests.map((r) => r.events.length)).toEqual([500, 500, 200]);
    expect(new Set(ingest.ids()).size).toBe(1_200);
  });

  test("requests stay within the 500 KB body limit (sizes counted in UTF-8 bytes)", async () => {
    const { layers, ingest } = setup({ flushAt: 500 });
    await layers.ready;
    // ~30 KB of "é" (2 bytes each) per event: about 16 fit in one body.
    for (let i = 0; i < 40; i++) layers.track("big", { text: "é".repeat(15_000) });
    await layers.flush();
    expect(ingest.requests.length).toBeGreaterThanOrEqual(3);
    for (const r of ingest.requests) expect(r.bodyBytes).toBeLessThanOrEqual(INGEST_LIMITS.maxBodyBytes);
    expect(ingest.requests[0]!.bodyBytes).toBeGreaterThan(INGEST_LIMITS.maxBodyBytes - 32 * 1024);
    expect(ingest.ids()).toHaveLength(40);
  });

  test("an event over 32 KB of JSON is refused locally and reported; one at the limit is sent", async () => {
    const { layers, ingest, rejected } = setup({ flushAt: 100 });
    await layers.ready;
    const base = { eventId: "x", name: "n", timestamp: 0, properties: { p: "" } };
    // Find the padding that makes this event's JSON exactly maxEventBytes long.
    const probe = JSON.stringify({
      ...base,
      eventId: "00000000-0000-0000-0000-000000000000",
      timestamp: Date.now(),
      anonymousId: layers.anonymousId,
    });
    const pad = INGEST_LIMITS.maxEventBytes - utf8Length(probe);
    expect(layers.track("n", { p: "a".repeat(pad) })).not.toBeNull();
    expect(layers.track("n", { p: "a".repeat(pad + 1) })).toBeNull();
    expect(layers.track("n", { p: "é".repeat(Math.ceil(pad / 2) + 1) })).toBeNull();
    expect(rejected.map((r) => r.rejection.code)).toEqual(["event_too_large", "event_too_large"]);
    await layers.flush();
    expect(ingest.requests[0]!.events).toHaveLength(1);
    expect(ingest.requests[0]!.bodyBytes).toBeGreaterThan(INGEST_LIMITS.maxEventBytes);
  });

  test("names the ingest would refuse and properties JSON cannot carry are refused locally", async () => {
    const { layers, rejected } = setup();
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    expect(layers.track("  ")).toBeNull();
    expect(layers.track("x".repeat(129))).toBeNull();
    expect(layers.track("ok", cyclic as never)).toBeNull();
    expect(rejected.map((r) => r.rejection.code)).toEqual([
      "invalid_event",
      "invalid_event",
      "invalid_event",
    ]);
  });

  test("utf8Length counts bytes as TextEncoder does", () => {
    for (const s of ["", "abc", "é", "€", "😀", "a\ud800b", "\udc00", "x😀é€"]) {
      expect(utf8Length(s), JSON.stringify(s)).toBe(new TextEncoder().encode(s).length);
    }
  });
});
