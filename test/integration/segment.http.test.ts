import { gzipSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import type { EventsMessage } from "../../shared/schemas/queue";
import { UA } from "../support/rows";
import { type Stack, startStack, waitFor } from "../support/stack";
import { createTenant, type TestTenant } from "../support/tenant";

// Segment's HTTP Tracking API on the ingest Worker, request by request: its limits and answers, Basic auth,
// and what of a Segment message reaches the queue (a recorder stands in for the consumer, so the test sees
// exactly what was enqueued — the only way anything reaches Postgres).

let stack: Stack;
let tenant: TestTenant;
beforeAll(async () => {
  stack = await startStack({ consumer: "recorder" });
  tenant = await createTenant(stack.db);
});
afterAll(() => stack?.dispose());

const basic = (credentials: string) => `Basic ${Buffer.from(credentials, "utf8").toString("base64")}`;

async function segment(
  path: string,
  body: unknown,
  init: { authorization?: string | null; headers?: Record<string, string>; rawBody?: string } = {},
): Promise<Response> {
  const headers: Record<string, string> = { "Content-Type": "application/json", ...init.headers };
  const authorization = init.authorization === undefined ? basic(`${tenant.sdkKey}:`) : init.authorization;
  if (authorization !== null) headers.Authorization = authorization;
  return (await stack.mf.dispatchFetch(`http://ingest.test${path}`, {
    method: "POST",
    headers,
    body: init.rawBody ?? JSON.stringify(body),
    cf: { country: "DE", region: "Bavaria" },
  })) as unknown as Response;
}

/** Sends a marker through /l/events and returns every event enqueued before it (the queue is in order). */
async function drainQueue(): Promise<EventsMessage["events"]> {
  const marker = `marker-${crypto.randomUUID()}`;
  expect((await stack.ingest({ eventId: marker, name: "marker" }, { key: tenant.sdkKey })).status).toBe(202);
  const seen: EventsMessage[] = [];
  await waitFor(async () => {
    seen.push(...((await stack.takeRecorded()) as EventsMessage[]));
    return seen.some((m) => m.events.some((e) => e.eventId === marker)) ? true : undefined;
  });
  return seen.flatMap((m) => m.events).filter((e) => e.eventId !== marker);
}

/** Drains and returns the raw queue messages too, for scanning everything that was enqueued. */
async function drainRaw(): Promise<{ events: EventsMessage["events"]; json: string }> {
  const events = await drainQueue();
  return { events, json: JSON.stringify(events) };
}

async function expectError(res: Response, status: number, code: string) {
  expect(res.status).toBe(status);
  const body = (await res.json()) as { error: Record<string, unknown> };
  expect(body.error).toMatchObject({ code, requestId: expect.stringMatching(/^req_/) });
  return body.error;
}

const track = (messageId: string, extra: Record<string, unknown> = {}) => ({
  type: "track",
  messageId,
  userId: "u-1",
  event: "Viewed",
  ...extra,
});

/** A message of exactly `bytes` bytes of JSON: ASCII padding in properties of ≤ 8,000 characters each. */
const sized = (messageId: string, bytes: number) => {
  const properties: Record<string, string> = {};
  const message = track(messageId, { properties });
  for (let i = 0; ; i++) {
    const room = bytes - JSON.stringify(message).length;
    if (room <= 0) break;
    const key = `p${i}`;
    properties[key] = "";
    const fits = bytes - JSON.stringify(message).length;
    properties[key] = "x".repeat(Math.max(0, Math.min(8000, fits)));
  }
  return message;
};

describe("Segment's limits and answers", () => {
  test("accepted: 200 {success: true}, the message queued under its messageId", async () => {
    const res = await segment("/v1/track", track("seg-ok-1", { properties: { plan: "pro" } }));
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ success: true, accepted: 1, rejected: [] });
    const events = await drainQueue();
    expect(events).toEqual([
      expect.objectContaining({
        eventId: "seg-ok-1",
        name: "Viewed",
        userId: "u-1",
        properties: { plan: "pro" },
      }),
    ]);
  });

  test("a single message over 32 KB: 400 message_too_large, nothing queued; 32 KB exactly is accepted", async () => {
    const big = sized("seg-33k", 33 * 1024);
    expect(JSON.stringify(big).length).toBe(33 * 1024);
    await expectError(await segment("/v1/track", big), 400, "message_too_large");
    const edge = sized("seg-32k", 32 * 1024);
    expect(JSON.stringify(edge).length).toBe(32 * 1024);
    expect((await segment("/v1/track", edge)).status).toBe(200);
    expect((await drainQueue()).map((e) => e.eventId)).toEqual(["seg-32k"]);
  });

  test("a batch holding one message over 32 KB: 400 message_too_large, none of the batch queued", async () => {
    const batch = [track("seg-part-1"), sized("seg-part-big", 33 * 1024), track("seg-part-3")];
    const error = await expectError(await segment("/v1/batch", { batch }), 400, "message_too_large");
    expect(error.details).toEqual({ index: 1 });
    expect(await drainQueue()).toEqual([]);
  });

  test("a batch over 500 KB: 400 batch_too_large, nothing queued (declared or streamed)", async () => {
    // 20 messages of 26 KB: each within 32 KB, the request over 500 KB.
    const batch = Array.from({ length: 20 }, (_, i) => sized(`seg-huge-${i}`, 26 * 1024));
    const body = JSON.stringify({ batch });
    expect(body.length).toBeGreaterThan(500 * 1024);
    await expectError(await segment("/v1/batch", { batch }), 400, "batch_too_large");
    // The same body streamed without Content-Length is cut off as it arrives.
    const bytes = new TextEncoder().encode(body);
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        for (let i = 0; i < bytes.length; i += 64 * 1024) controller.enqueue(bytes.slice(i, i + 64 * 1024));
        controller.close();
      },
    });
    const streamed = (await stack.mf.dispatchFetch("http://ingest.test/v1/batch", {
      method: "POST",
      headers: { "Content-Type": "application/json", Authorization: basic(`${tenant.sdkKey}:`) },
      body: stream as never,
      duplex: "half",
    } as never)) as unknown as Response;
    await expectError(streamed, 400, "batch_too_large");
    expect(await drainQueue()).toEqual([]);
  });

  test("more than 500 messages: 400 too_many_events, nothing queued", async () => {
    const batch = Array.from({ length: 501 }, (_, i) => track(`seg-many-${i}`));
    await expectError(await segment("/v1/batch", { batch }), 400, "too_many_events");
    expect(await drainQueue()).toEqual([]);
  });

  test("invalid JSON: 400 invalid_json; a body that is no batch: 400 invalid_body", async () => {
    await expectError(await segment("/v1/batch", null, { rawBody: '{"batch": [' }), 400, "invalid_json");
    await expectError(await segment("/v1/batch", { batch: "nope" }), 400, "invalid_body");
    await expectError(await segment("/v1/batch", { batch: [] }), 400, "invalid_body");
    await expectError(await segment("/v1/track", [track("x")]), 400, "invalid_body");
    expect(await drainQueue()).toEqual([]);
  });

  test("per-message problems: 200 as Segment answers, the valid messages queued, the others listed", async () => {
    const batch = [
      track("seg-mixed-ok"),
      { type: "track", messageId: "seg-mixed-noid", event: "No identity" },
      { type: "track", messageId: "seg-mixed-noname", userId: "u-1" },
      { type: "launch", messageId: "seg-mixed-type", userId: "u-1" },
      { type: "alias", messageId: "seg-mixed-alias", userId: "u-1" },
      track("seg-mixed-props", { properties: "not an object" }),
    ];
    const res = await segment("/v1/batch", { batch });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { success: boolean; accepted: number; rejected: { index: number }[] };
    expect(body).toMatchObject({ success: true, accepted: 1 });
    expect(body.rejected).toEqual([
      { index: 1, code: "invalid_event", message: expect.stringContaining("anonymousId") },
      { index: 2, code: "invalid_event", message: expect.stringContaining("name") },
      { index: 3, code: "invalid_event", message: expect.stringContaining("type") },
      { index: 4, code: "invalid_event", message: expect.stringContaining("previousId") },
      { index: 5, code: "invalid_event", message: expect.stringContaining("properties") },
    ]);
    expect((await drainQueue()).map((e) => e.eventId)).toEqual(["seg-mixed-ok"]);
    // None valid: still Segment's 200, nothing queued.
    const none = await segment("/v1/batch", { batch: batch.slice(1) });
    expect(none.status).toBe(200);
    expect(await none.json()).toMatchObject({ success: true, accepted: 0 });
    expect(await drainQueue()).toEqual([]);
  });
});

describe("the batch paths of Segment's own libraries", () => {
  test("/v1/b (analytics-swift, analytics-kotlin) and /v1/import (analytics-java) are /v1/batch", async () => {
    // These libraries append their own path to the configured host: with only /v1/batch served, their
    // batches got 404, which they do not retry, and every event was lost while the README said "unchanged".
    for (const path of ["/v1/b", "/v1/import"]) {
      const res = await segment(path, { batch: [track(`seg-path-${path.slice(4)}`)], writeKey: "ignored" });
      expect(res.status, path).toBe(200);
      expect(await res.json()).toEqual({ success: true, accepted: 1, rejected: [] });
      await expectError(
        await segment(path, { batch: [track("x")] }, { authorization: null }),
        401,
        "unauthorized",
      );
      const get = (await stack.mf.dispatchFetch(`http://ingest.test${path}`)) as unknown as Response;
      await expectError(get, 405, "method_not_allowed");
    }
    expect((await drainQueue()).map((e) => e.eventId)).toEqual(["seg-path-b", "seg-path-import"]);
  });
});

describe("gzip, as analytics-ios sends every batch", () => {
  const gzipped = (body: unknown) => gzipSync(Buffer.from(JSON.stringify(body)));
  const send = (path: string, body: Uint8Array) =>
    stack.mf.dispatchFetch(`http://ingest.test${path}`, {
      method: "POST",
      headers: {
        "Content-Type": "application/json",
        "Content-Encoding": "gzip",
        Authorization: basic(`${tenant.sdkKey}:`),
      },
      body,
    }) as unknown as Promise<Response>;

  test("Content-Encoding: gzip is decompressed; the limits count the decompressed bytes", async () => {
    // analytics-ios gzips every batch and drops it on a 4xx: read as text, each one was a 400 and lost.
    const res = await send("/v1/batch", gzipped({ batch: [track("seg-gzip-1"), track("seg-gzip-2")] }));
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ success: true, accepted: 2, rejected: [] });
    expect((await drainQueue()).map((e) => e.eventId)).toEqual(["seg-gzip-1", "seg-gzip-2"]);

    // 2 MB that compresses to a few KB: cut off at 500 KB like any other body, nothing queued.
    const bomb = gzipped({ batch: [track("seg-bomb", { properties: { pad: "x".repeat(2_000_000) } })] });
    expect(bomb.byteLength).toBeLessThan(32 * 1024);
    await expectError(await send("/v1/batch", bomb), 400, "batch_too_large");
    // A single message: 32 KB after decompression.
    const big = gzipped(sized("seg-gzip-33k", 33 * 1024));
    await expectError(await send("/v1/track", big), 400, "message_too_large");
    expect(await drainQueue()).toEqual([]);
  });

  test("a body that says gzip and is not: 400 invalid_body, never a 500", async () => {
    await expectError(
      await send("/v1/batch", new TextEncoder().encode('{"batch": []}')),
      400,
      "invalid_body",
    );
    const truncated = gzipped({ batch: [track("seg-gzip-cut")] }).subarray(0, 20);
    await expectError(await send("/v1/batch", truncated), 400, "invalid_body");
    expect(await drainQueue()).toEqual([]);
  });
});

describe("Basic auth with the write key", () => {
  test("the key as user with an empty password, without the colon, any scheme case: accepted", async () => {
    for (const [i, authorization] of [
      basic(`${tenant.sdkKey}:`),
      basic(tenant.sdkKey),
      `basic ${Buffer.from(`${tenant.sdkKey}:`).toString("base64")}`,
    ].entries()) {
      const res = await segment("/v1/track", track(`seg-auth-${i}`), { authorization });
      expect(res.status).toBe(200);
    }
    expect((await drainQueue()).map((e) => e.eventId)).toEqual(["seg-auth-0", "seg-auth-1", "seg-auth-2"]);
  });

  test("anything else: 401 unauthorized, nothing queued", async () => {
    const cases: (string | null)[] = [
      null,
      basic(`${tenant.sdkKey}:a-password`),
      `Bearer ${tenant.sdkKey}`,
      "Basic !!!not-base64!!!",
      basic(":"),
      basic("lp_pk_doesNotExist000000000000000:"),
      basic("DmBXIN4JnwqBnTqXccTF0wBnLXNQmFtk:"),
    ];
    for (const authorization of cases) {
      const error = await expectError(
        await segment("/v1/track", track("seg-unauth"), { authorization }),
        401,
        "unauthorized",
      );
      expect(JSON.stringify(error)).not.toContain(tenant.sdkKey);
    }
    // The key in the body (Segment's writeKey field) is not a way in here: one way, the Basic header.
    await expectError(
      await segment(
        "/v1/track",
        { ...track("seg-unauth"), writeKey: tenant.sdkKey },
        { authorization: null },
      ),
      401,
      "unauthorized",
    );
    expect(await drainQueue()).toEqual([]);
  });
});

describe("what of a Segment message reaches the queue", () => {
  test("context.ip and the request's IP headers are never read: the address is nowhere in the queue", async () => {
    const ip = "198.51.100.23";
    const res = await segment(
      "/v1/batch",
      {
        batch: [
          track("seg-ip-1", { context: { ip } }),
          { ...track("seg-ip-2"), context: { ip, direct: true } },
        ],
        context: { ip },
      },
      { headers: { "CF-Connecting-IP": ip, "X-Forwarded-For": ip, "X-Real-IP": ip } },
    );
    expect(res.status).toBe(200);
    const { events, json } = await drainRaw();
    expect(events.map((e) => e.eventId)).toEqual(["seg-ip-1", "seg-ip-2"]);
    expect(json).not.toContain(ip);
    expect(stack.logs.join("\n")).not.toContain(ip);
  });

  test("context.userAgent: parsed for os and browser, relayed as the event's (not the sender's) User-Agent", async () => {
    const res = await segment(
      "/v1/page",
      {
        messageId: "seg-ua-1",
        anonymousId: "anon-ua",
        name: "Home",
        context: {
          userAgent: UA.chromeDesktop,
          page: { url: "https://shop.example/home?email=a%40b.example#x" },
        },
        properties: { referrer: "https://ref.example/path?q=secret", search: "?q=secret", path: "/home" },
      },
      { headers: { "User-Agent": "analytics-node-next/latest" } },
    );
    expect(res.status).toBe(200);
    const [event] = await drainQueue();
    expect(event).toMatchObject({
      eventId: "seg-ua-1",
      name: "page_view",
      os: "Windows",
      browser: "Chrome",
      userAgent: UA.chromeDesktop,
      pageUrl: "https://shop.example/home",
      properties: { name: "Home", path: "/home", referrer: "https://ref.example/path" },
    });
    expect(JSON.stringify(event)).not.toContain("secret");
    expect(JSON.stringify(event)).not.toContain("analytics-node");
  });

  test("context.userAgent holding a NUL or a lone surrogate: that message refused, none of it queued", async () => {
    // The parsed device model comes straight out of the User-Agent: "Pixel\u0000X" would reach
    // sdk_events.device_model, which Postgres refuses, and the event would be dead-lettered after a 200.
    const android = (model: string) =>
      `Mozilla/5.0 (Linux; Android 10; ${model} Build/QP1A) AppleWebKit/537.36 Chrome/80.0 Mobile Safari/537.36`;
    const res = await segment("/v1/batch", {
      batch: [
        track("seg-ua-nul", { context: { userAgent: android("Pixel\u0000X") } }),
        track("seg-ua-fine", { context: { userAgent: android("Pixel 7") } }),
        track("seg-ua-lone", { context: { userAgent: android("Foo\ud800Bar") } }),
      ],
    });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { accepted: number; rejected: { index: number; message: string }[] };
    expect(body.accepted).toBe(1);
    expect(body.rejected).toEqual([
      { index: 0, code: "invalid_event", message: expect.stringContaining("NUL") },
      { index: 2, code: "invalid_event", message: expect.stringContaining("surrogate") },
    ]);
    const events = await drainQueue();
    expect(events).toEqual([expect.objectContaining({ eventId: "seg-ua-fine", deviceModel: "Pixel 7" })]);
  });

  test("advertisingId by device type (iOS → idfa, Android → gaid); limit-ad-tracking and refused consent drop it", async () => {
    const adId = "6D92078A-8246-4BA4-AE5B-76104861E7DC";
    const res = await segment("/v1/batch", {
      // The batch's context is merged under each message's own (device.type from the message, id from the batch).
      context: { device: { advertisingId: adId } },
      batch: [
        { ...track("seg-ad-ios"), context: { device: { type: "ios" } } },
        { ...track("seg-ad-android"), context: { device: { type: "android" } } },
        { ...track("seg-ad-unknown"), context: { device: { type: "tv" } } },
        { ...track("seg-ad-lat"), context: { device: { type: "ios", adTrackingEnabled: false } } },
        {
          ...track("seg-ad-refused"),
          context: {
            device: { type: "android" },
            userAgent: UA.chromeDesktop,
            page: { url: "https://shop.example/" },
            consent: { categoryPreferences: { Advertising: false, Analytics: true } },
          },
        },
        {
          ...track("seg-ad-granted"),
          context: { device: { type: "android" }, consent: { categoryPreferences: { advertising: true } } },
        },
      ],
    });
    expect(res.status).toBe(200);
    const byId = Object.fromEntries((await drainQueue()).map((e) => [e.eventId, e]));
    expect(byId["seg-ad-ios"]?.adIds).toEqual({ idfa: adId });
    expect(byId["seg-ad-android"]?.adIds).toEqual({ gaid: adId });
    expect(byId["seg-ad-unknown"]?.adIds).toBeUndefined();
    expect(byId["seg-ad-lat"]?.adIds).toBeUndefined();
    expect(byId["seg-ad-refused"]).toMatchObject({ consentAds: false });
    expect(byId["seg-ad-refused"]?.adIds).toBeUndefined();
    expect(byId["seg-ad-refused"]?.userAgent).toBeUndefined();
    expect(byId["seg-ad-refused"]?.pageUrl).toBeUndefined();
    expect(byId["seg-ad-granted"]).toMatchObject({ consentAds: true, adIds: { gaid: adId } });
  });

  test("timestamp and sentAt: a device clock an hour ahead is corrected like /l/events", async () => {
    const now = Date.now();
    const skew = 3_600_000;
    const res = await segment("/v1/batch", {
      sentAt: new Date(now + skew).toISOString(),
      batch: [track("seg-clock", { timestamp: new Date(now + skew - 60_000).toISOString() })],
    });
    expect(res.status).toBe(200);
    const [event] = await drainQueue();
    const ts = Date.parse(event!.timestamp);
    // Placed a minute before it was received (not an hour ahead, not "now"): the skew was taken out.
    expect(ts).toBeLessThanOrEqual(Date.now() - 59_000);
    expect(ts).toBeGreaterThan(now - 120_000);
  });

  test("identify: email and phone from traits (or context.traits) hashed, other traits never queued", async () => {
    const res = await segment("/v1/identify", {
      messageId: "seg-identify-1",
      userId: "u-77",
      traits: {
        email: "Someone@Example.com",
        phone: "+1 415 555 0199",
        name: "Some One",
        address: { city: "Berlin" },
      },
    });
    expect(res.status).toBe(200);
    const res2 = await segment("/v1/track", {
      ...track("seg-ctx-traits"),
      context: { traits: { email: "other@example.com", lastName: "Other" } },
    });
    expect(res2.status).toBe(200);
    const { events, json } = await drainRaw();
    expect(events[0]).toMatchObject({
      eventId: "seg-identify-1",
      name: "identify",
      userId: "u-77",
      emailSha256: expect.stringMatching(/^[0-9a-f]{64}$/),
      phoneSha256: expect.stringMatching(/^[0-9a-f]{64}$/),
    });
    expect(events[1]?.emailSha256).toMatch(/^[0-9a-f]{64}$/);
    for (const raw of [
      "Someone@Example.com",
      "555 0199",
      "Some One",
      "Berlin",
      "other@example.com",
      'Other"',
    ]) {
      expect(json.toLowerCase()).not.toContain(raw.toLowerCase());
    }
  });

  test("CORS as /l/events: any origin may send with the Authorization header", async () => {
    const res = (await stack.mf.dispatchFetch("http://ingest.test/v1/batch", {
      method: "OPTIONS",
      headers: {
        Origin: "https://shop.example",
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type",
      },
    })) as unknown as Response;
    expect(res.status).toBe(204);
    expect(res.headers.get("Access-Control-Allow-Origin")).toBe("*");
    expect(res.headers.get("Access-Control-Allow-Headers")?.toLowerCase()).toContain("authorization");
    const get = (await stack.mf.dispatchFetch("http://ingest.test/v1/batch")) as unknown as Response;
    await expectError(get, 405, "method_not_allowed");
  });
});
