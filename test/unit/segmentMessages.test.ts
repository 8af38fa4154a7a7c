import { describe, expect, test } from "vitest";
import {
  normalizeSegmentMessages,
  parseSegmentBody,
  segmentToEvent,
} from "../../functions/ingest/segmentMessages";
import { writeKeyFromBasicAuth } from "../../functions/ingest/segmentWriteKey";
import { ApiError } from "../../shared/errors";
import { sdkEventSchema } from "../../shared/schemas/sdk-event";

// The Segment message → /l/events event rewrite on its own: every converted message is judged by the
// ingest's own schema (sdkEventSchema), so what is asserted here is what normalizeEvents receives.

const KEY = "lp_pk_abcdefghijklmnopqrstuvwxyz012345";
const b64 = (s: string) => Buffer.from(s, "utf8").toString("base64");

describe("writeKeyFromBasicAuth", () => {
  test("the user of Basic auth with an empty password (or no colon); anything else is null", () => {
    expect(writeKeyFromBasicAuth(`Basic ${b64(`${KEY}:`)}`)).toBe(KEY);
    expect(writeKeyFromBasicAuth(`Basic ${b64(KEY)}`)).toBe(KEY);
    expect(writeKeyFromBasicAuth(`BASIC   ${b64(`${KEY}:`)}`)).toBe(KEY);
    for (const header of [
      undefined,
      "",
      `Bearer ${KEY}`,
      `Basic ${b64(`${KEY}:secret`)}`,
      `Basic ${b64(":")}`,
      "Basic ***",
      `Basic ${b64(`${KEY}:`)} extra`,
    ]) {
      expect(writeKeyFromBasicAuth(header), String(header)).toBeNull();
    }
  });
});

function convert(message: unknown, route?: Parameters<typeof segmentToEvent>[1], batchContext?: object) {
  const converted = segmentToEvent(message, route, batchContext as Record<string, unknown> | undefined);
  if ("problem" in converted) throw new Error(converted.problem);
  return { ...converted, parsed: sdkEventSchema.parse(converted.event) };
}

describe("segmentToEvent", () => {
  test("track: messageId, event name, ids, properties, timestamp; context.ip is not in the result", () => {
    const { parsed, event, userAgent } = convert({
      type: "track",
      messageId: "m-1",
      userId: "u-1",
      anonymousId: "a-1",
      event: "Order Completed",
      properties: { revenue: 9.5 },
      timestamp: "2026-11-20T10:00:00.000Z",
      context: { ip: "203.0.113.9", userAgent: "UA/1.0", library: { name: "x" } },
      integrations: { All: false },
    });
    expect(parsed).toEqual({
      eventId: "m-1",
      name: "Order Completed",
      userId: "u-1",
      anonymousId: "a-1",
      properties: { revenue: 9.5 },
      timestamp: "2026-11-20T10:00:00.000Z",
    });
    expect(event.anonymousId).toBe("a-1");
    expect(userAgent).toBe("UA/1.0");
    expect(JSON.stringify(event)).not.toContain("203.0.113.9");
  });

  test("the route's type wins over the message's; names follow our SDK", () => {
    expect(convert({ type: "track", userId: "u", name: "Home" }, "screen").parsed.name).toBe("screen_view");
    expect(convert({ userId: "u" }, "page").parsed.name).toBe("page_view");
    expect(convert({ userId: "u", traits: {} }, "identify").parsed.name).toBe("identify");
    expect(convert({ userId: "u", groupId: "g" }, "group").parsed).toMatchObject({
      name: "group",
      properties: { groupId: "g" },
    });
    expect(convert({ userId: "u", previousId: "p" }, "alias").parsed).toMatchObject({
      name: "alias",
      properties: { previousId: "p" },
    });
  });

  test("identify traits win over context.traits; only email and phone are read", () => {
    const { parsed, event } = convert({
      type: "identify",
      userId: "u",
      traits: { email: "a@example.com", name: "A" },
      context: { traits: { email: "b@example.com", phone: "+4917012345678", city: "X" } },
    });
    expect(parsed).toMatchObject({ email: "a@example.com", phone: "+4917012345678" });
    expect(JSON.stringify(event)).not.toContain("city");
    expect(JSON.stringify(event)).not.toContain('"A"');
  });

  test("batch context merged under the message's, one level deep", () => {
    const { parsed } = convert(
      {
        type: "track",
        userId: "u",
        event: "e",
        context: { device: { type: "android" }, os: { version: "14" } },
      },
      undefined,
      {
        device: { advertisingId: "ad-1", type: "ios" },
        os: { name: "Android" },
        app: { namespace: "com.x" },
      },
    );
    expect(parsed).toMatchObject({
      appId: "com.x",
      device: { os: "Android", osVersion: "14", gaid: "ad-1" },
    });
    expect(parsed.device?.idfa).toBeUndefined();
  });

  test("a __proto__ key in a context stays a key: it never becomes the merged context's prototype", () => {
    const inner = JSON.parse('{"__proto__": {"device": {"type": "ios", "advertisingId": "ad-evil"}}}');
    const { parsed } = convert({ type: "track", userId: "u", event: "e", context: inner }, undefined, {
      app: { namespace: "com.x" },
    });
    expect(parsed.device).toBeUndefined();
    expect(parsed.appId).toBe("com.x");
  });

  test("a big batch context is not copied into every message: its unread keys cost nothing per message", async () => {
    // 42,000 unread keys in a 490 KB batch's context, merged under 500 messages' contexts by copying,
    // took over a minute of CPU for one request. Only the fields read may be looked at per message: the
    // shared context (and each object in it) is enumerated at most once per request, never per message.
    const enumerations = new Map<string, number>();
    const watched = <T extends object>(name: string, target: T): T =>
      new Proxy(target, {
        ownKeys(t) {
          enumerations.set(name, (enumerations.get(name) ?? 0) + 1);
          return Reflect.ownKeys(t);
        },
      });
    const many = Object.fromEntries(Array.from({ length: 2000 }, (_, i) => [`k${i}`, i]));
    const batchContext = watched("context", {
      ...many,
      traits: watched("traits", { ...many, email: "a@b.example" }),
      device: watched("device", { ...many, type: "ios", advertisingId: "ad-1" }),
      consent: watched("consent", {
        categoryPreferences: watched("categoryPreferences", { ...many, Advertising: true }),
      }),
      userAgent: "Mozilla/5.0 (Linux; Android 10; Pixel 7 Build/QP1A) Chrome/80.0 Mobile Safari/537.36",
    });
    const messages = Array.from({ length: 50 }, (_, i) => ({
      type: "track",
      userId: "u",
      event: "e",
      messageId: `m${i}`,
      context: { traits: { phone: "+14155550199" }, device: { model: "X" }, consent: {}, page: {} },
    }));
    const out = await normalizeSegmentMessages(
      { sentAt: undefined, messages, context: batchContext, routeType: undefined },
      {
        receivedAt: new Date(),
        retentionDays: 400,
        country: null,
        region: null,
        bodyBytes: 1000,
        bodyMayHoldUnstorableText: false,
      },
    );
    expect(out.accepted).toHaveLength(50);
    // What is read still comes through the merge: the batch's email and ad id, the message's phone and model.
    expect(out.accepted[49]).toMatchObject({
      emailSha256: expect.stringMatching(/^[0-9a-f]{64}$/),
      phoneSha256: expect.stringMatching(/^[0-9a-f]{64}$/),
      deviceModel: "X",
      adIds: { idfa: "ad-1" },
    });
    for (const [name, count] of enumerations) expect(count, name).toBeLessThanOrEqual(1);
  });

  test("messages Segment refuses are refused, with the reason", () => {
    const problem = (m: unknown, route?: Parameters<typeof segmentToEvent>[1]) => {
      const converted = segmentToEvent(m, route, undefined);
      return "problem" in converted ? converted.problem : null;
    };
    expect(problem("text")).toContain("object");
    expect(problem({ type: "constructor", userId: "u" })).toContain("type");
    expect(problem({ type: "__proto__", userId: "u" })).toContain("type");
    expect(problem({ type: "track", event: "e" })).toContain("anonymousId");
    expect(problem({ userId: "u" }, "alias")).toContain("previousId");
  });

  test("page properties from the address bar lose query and fragment; search is dropped", () => {
    const { parsed } = convert(
      {
        anonymousId: "a",
        properties: {
          url: "https://x.example/p?token=1#f",
          referrer: "not a url",
          search: "?token=1",
          path: "/p",
        },
      },
      "page",
    );
    expect(parsed.properties).toEqual({ url: "https://x.example/p", path: "/p" });
  });
});

describe("parseSegmentBody", () => {
  const code = (f: () => unknown) => {
    try {
      f();
      return null;
    } catch (error) {
      return error instanceof ApiError ? error.code : String(error);
    }
  };
  test("request-level answers: JSON, shape, sentAt, count, 32 KB per message", () => {
    expect(code(() => parseSegmentBody("{", 1, "batch"))).toBe("invalid_json");
    expect(code(() => parseSegmentBody("[]", 2, "track"))).toBe("invalid_body");
    expect(code(() => parseSegmentBody('{"batch":{}}', 12, "batch"))).toBe("invalid_body");
    expect(code(() => parseSegmentBody('{"sentAt":"soon","batch":[{}]}', 30, "batch"))).toBe("invalid_body");
    const many = JSON.stringify({ batch: Array.from({ length: 501 }, () => ({})) });
    expect(code(() => parseSegmentBody(many, many.length, "batch"))).toBe("too_many_events");
    const big = JSON.stringify({ batch: [{}, { p: "x".repeat(33 * 1024) }] });
    expect(code(() => parseSegmentBody(big, big.length, "batch"))).toBe("message_too_large");
    const ok = parseSegmentBody('{"sentAt":1795000000000,"batch":[{"type":"track"}]}', 50, "batch");
    expect(ok).toMatchObject({ sentAt: 1795000000000, messages: [{ type: "track" }] });
  });
});
