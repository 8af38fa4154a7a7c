import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { type IngestContext, normalizeEvents } from "../../functions/ingest/normalizeEvents";
import type { ParsedUserAgent } from "../../functions/ingest/parseUserAgent";
import { INGEST_LIMITS } from "../../shared/limits";
import { type QueuedEvent, queuedEventSchema } from "../../shared/schemas/queue";

const sha256 = (normalized: string) => createHash("sha256").update(normalized, "utf8").digest("hex");

const RECEIVED_AT = new Date("2025-03-10T12:00:00.000Z");
const RECEIVED_MS = RECEIVED_AT.getTime();
const DAY_MS = 86_400_000;
const MINUTE_MS = 60_000;
const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const ZERO_AD_ID = "00000000-0000-0000-0000-000000000000";

const IPHONE_UA: ParsedUserAgent = {
  os: "iOS",
  osVersion: "17.4",
  browser: "Mobile Safari",
  deviceModel: "iPhone",
};

function ctx(overrides: Partial<IngestContext> = {}): IngestContext {
  return {
    receivedAt: RECEIVED_AT,
    retentionDays: 400,
    country: "DE",
    region: "Bavaria",
    userAgent: IPHONE_UA,
    // As large as a body may be, so the per-event size check always runs.
    bodyBytes: 500 * 1024,
    bodyMayHoldUnstorableText: true,
    ...overrides,
  };
}

const iso = (ms: number) => new Date(ms).toISOString();

/** Normalizes one event that must be accepted and returns it. */
async function acceptOne(
  raw: unknown,
  sentAt?: string | number,
  context: IngestContext = ctx(),
): Promise<QueuedEvent> {
  const { accepted, rejected } = await normalizeEvents([raw], sentAt, context);
  expect(rejected).toEqual([]);
  expect(accepted).toHaveLength(1);
  return accepted[0]!;
}

/** Normalizes one event that must be rejected and returns the rejection. */
async function rejectOne(raw: unknown, sentAt?: string | number, context: IngestContext = ctx()) {
  const { accepted, rejected } = await normalizeEvents([raw], sentAt, context);
  expect(accepted).toEqual([]);
  expect(rejected).toHaveLength(1);
  expect(rejected[0]!.index).toBe(0);
  return rejected[0]!;
}

describe("normalizeEvents: time", () => {
  it.each([
    // [label, sentAt, timestamp, expected]
    [
      "client clock 1 h ahead: the event keeps its 5 min age",
      iso(RECEIVED_MS + 60 * MINUTE_MS),
      iso(RECEIVED_MS + 55 * MINUTE_MS),
      iso(RECEIVED_MS - 5 * MINUTE_MS),
    ],
    [
      "client clock 3 days behind: the event keeps its 2 h age",
      iso(RECEIVED_MS - 3 * DAY_MS),
      iso(RECEIVED_MS - 3 * DAY_MS - 120 * MINUTE_MS),
      iso(RECEIVED_MS - 120 * MINUTE_MS),
    ],
    [
      "sentAt and timestamp as epoch milliseconds",
      RECEIVED_MS + 10 * MINUTE_MS,
      RECEIVED_MS - 20 * MINUTE_MS,
      iso(RECEIVED_MS - 30 * MINUTE_MS),
    ],
    [
      "sentAt with a time-zone offset",
      "2025-03-10T15:00:00+02:00", // 13:00Z: one hour ahead
      "2025-03-10T12:30:00Z",
      "2025-03-10T11:30:00.000Z",
    ],
    [
      "timestamp after sentAt (cannot happen honestly) is clamped to receivedAt",
      iso(RECEIVED_MS),
      iso(RECEIVED_MS + 5 * MINUTE_MS),
      iso(RECEIVED_MS),
    ],
  ])("clock skew, %s", async (_label, sentAt, timestamp, expected) => {
    const event = await acceptOne({ name: "purchase", timestamp }, sentAt);
    expect(event.timestamp).toBe(expected);
  });

  it("without sentAt the timestamp is taken as sent", async () => {
    const ts = iso(RECEIVED_MS - 3 * DAY_MS);
    expect((await acceptOne({ name: "a", timestamp: ts })).timestamp).toBe(ts);
  });

  it("an epoch-ms numeric timestamp becomes an ISO time", async () => {
    const ms = Date.UTC(2025, 2, 9, 8, 30, 15, 250);
    expect((await acceptOne({ name: "a", timestamp: ms })).timestamp).toBe("2025-03-09T08:30:15.250Z");
  });

  it.each([
    ["one hour ahead", iso(RECEIVED_MS + 60 * MINUTE_MS)],
    ["a year ahead", iso(RECEIVED_MS + 365 * DAY_MS)],
    ["as epoch ms", RECEIVED_MS + 1],
  ])("a future timestamp (%s) is clamped to receivedAt", async (_label, timestamp) => {
    expect((await acceptOne({ name: "a", timestamp })).timestamp).toBe(RECEIVED_AT.toISOString());
  });

  it("a missing timestamp becomes receivedAt, with or without sentAt", async () => {
    expect((await acceptOne({ name: "a" })).timestamp).toBe(RECEIVED_AT.toISOString());
    expect((await acceptOne({ name: "a" }, iso(RECEIVED_MS + 3_600_000))).timestamp).toBe(
      RECEIVED_AT.toISOString(),
    );
  });

  it("exactly at the retention boundary is accepted; one millisecond older is timestamp_too_old", async () => {
    const context = ctx({ retentionDays: 30 });
    const boundary = RECEIVED_MS - 30 * DAY_MS;
    expect((await acceptOne({ name: "a", timestamp: boundary }, undefined, context)).timestamp).toBe(
      iso(boundary),
    );
    const rejection = await rejectOne({ name: "a", timestamp: boundary - 1 }, undefined, context);
    expect(rejection.code).toBe("timestamp_too_old");
    expect(rejection.message).toContain("30 days");
  });

  it("retention is judged on the skew-corrected time, not on the client's clock", async () => {
    // The client's clock is 40 days behind: its 1-day-old event looks 41 days old, but is not.
    const sentAt = RECEIVED_MS - 40 * DAY_MS;
    const event = await acceptOne(
      { name: "a", timestamp: sentAt - DAY_MS },
      sentAt,
      ctx({ retentionDays: 30 }),
    );
    expect(event.timestamp).toBe(iso(RECEIVED_MS - DAY_MS));
  });

  it("an event a year old is rejected under a 30-day retention and accepted under 400 days", async () => {
    const raw = { name: "a", timestamp: iso(RECEIVED_MS - 365 * DAY_MS) };
    expect((await rejectOne(raw, undefined, ctx({ retentionDays: 30 }))).code).toBe("timestamp_too_old");
    await acceptOne(raw, undefined, ctx({ retentionDays: 400 }));
  });
});

describe("normalizeEvents: event ids", () => {
  it("generates a UUID when the client sent none, a different one per event", async () => {
    const { accepted } = await normalizeEvents(
      Array.from({ length: 50 }, () => ({ name: "a" })),
      undefined,
      ctx(),
    );
    const ids = accepted.map((e) => e.eventId);
    for (const id of ids) expect(id).toMatch(UUID_V4);
    expect(new Set(ids).size).toBe(50);
  });

  it("keeps the client's eventId as sent", async () => {
    const eventId = "ios-7F3A9C2E:42";
    expect((await acceptOne({ name: "a", eventId })).eventId).toBe(eventId);
  });

  it.each([
    ["with a space", "order 42"],
    ["with a tab", "a\tb"],
    ["empty", ""],
    ["non-ASCII", "événement"],
    ["too long", "x".repeat(INGEST_LIMITS.maxEventIdLength + 1)],
  ])("an eventId %s → invalid_event naming eventId", async (_label, eventId) => {
    const rejection = await rejectOne({ name: "a", eventId });
    expect(rejection.code).toBe("invalid_event");
    expect(rejection.message).toMatch(/^eventId: /);
  });
});

describe("normalizeEvents: a mixed batch", () => {
  it("accepts the valid events and rejects the others by index, code and field", async () => {
    const raws: unknown[] = [
      { name: "ok-0" },
      { name: "" },
      { name: "ok-2", userId: "u-2" },
      "not an event",
      { name: "bad-4", eventId: "has space" },
      { name: "bad-5", timestamp: "last tuesday" },
      { name: "bad-6", properties: ["not", "an", "object"] },
      { name: "bad-7", device: { os: 7 } },
      { name: "ok-8", timestamp: RECEIVED_MS - 1000 },
      { name: "bad-9", timestamp: RECEIVED_MS - 401 * DAY_MS },
    ];
    const { accepted, rejected } = await normalizeEvents(raws, undefined, ctx());

    expect(accepted.map((e) => e.name)).toEqual(["ok-0", "ok-2", "ok-8"]);
    expect(rejected.map((r) => [r.index, r.code])).toEqual([
      [1, "invalid_event"],
      [3, "invalid_event"],
      [4, "invalid_event"],
      [5, "invalid_event"],
      [6, "invalid_event"],
      [7, "invalid_event"],
      [9, "timestamp_too_old"],
    ]);
    const message = (index: number) => rejected.find((r) => r.index === index)?.message ?? "";
    expect(message(1)).toMatch(/^name: /);
    expect(message(3)).toMatch(/^event: /);
    expect(message(4)).toMatch(/^eventId: /);
    expect(message(5)).toMatch(/^timestamp: /);
    expect(message(6)).toMatch(/^properties: /);
    expect(message(7)).toMatch(/^device\.os: /);
  });

  it("every accepted event satisfies the queue contract the consumer validates", async () => {
    const { accepted } = await normalizeEvents(
      [
        { name: "a" },
        {
          name: "b",
          eventId: "e-1",
          userId: "u-1",
          anonymousId: "anon-1",
          timestamp: RECEIVED_MS - 5000,
          appId: "com.example.app",
          properties: { plan: "pro", amount: 9.99, tags: ["x"], nested: { ok: true } },
          email: "A@Example.com",
          phone: "+1 555 010 0000",
          device: {
            os: "Android",
            osVersion: "14",
            model: "Pixel 8",
            gaid: "38400000-8cf0-11bd-b23e-10b96e40000d",
          },
          consent: { ads: true },
        },
      ],
      undefined,
      ctx(),
    );
    expect(accepted).toHaveLength(2);
    for (const event of accepted) expect(queuedEventSchema.safeParse(event).success).toBe(true);
    // The anonymous id rides the queue as sent (the consumer stores it and links it to the user id).
    expect(accepted.map((e) => [e.userId, e.anonymousId])).toEqual([
      [null, null],
      ["u-1", "anon-1"],
    ]);
  });
});

describe("normalizeEvents: size limits", () => {
  const MAX = INGEST_LIMITS.maxEventBytes;

  /** An event whose JSON is exactly `bytes` bytes, padded with `char` across several strings. */
  function eventOfBytes(bytes: number, char = "x"): Record<string, unknown> {
    const size = (value: unknown) => new TextEncoder().encode(JSON.stringify(value)).length;
    const charBytes = size(char) - 2;
    // Each string stays under the 8192-character property limit, counted in UTF-16 units.
    const perString = Math.floor(8000 / char.length);
    const keys = Math.ceil(bytes / charBytes / perString) + 1;
    const properties: Record<string, string> = { pad: "" };
    for (let i = 0; i < keys; i++) properties[`p${i}`] = "";
    const event = { name: "big", properties };
    let missing = bytes - size(event);
    for (let i = 0; i < keys; i++) {
      const n = Math.min(perString, Math.floor(missing / charBytes));
      properties[`p${i}`] = char.repeat(n);
      missing -= n * charBytes;
    }
    // What the wide characters could not fill exactly is filled with ASCII.
    properties.pad = "y".repeat(missing);
    expect(size(event)).toBe(bytes);
    return event;
  }

  it("an event of exactly the limit is accepted; one byte more is event_too_large", async () => {
    await acceptOne(eventOfBytes(MAX));
    const rejection = await rejectOne(eventOfBytes(MAX + 1));
    expect(rejection.code).toBe("event_too_large");
    expect(rejection.message).toContain(String(MAX));
  });

  it("an event of 40 KB of ASCII is event_too_large", async () => {
    expect((await rejectOne(eventOfBytes(40 * 1024))).code).toBe("event_too_large");
  });

  it.each([
    ["é (2 bytes)", "é"],
    ["€ (3 bytes)", "€"],
    ["an emoji (4 bytes, 2 UTF-16 units)", "😀"],
  ])("counts UTF-8 bytes, not characters: %s", async (_label, char) => {
    const event = eventOfBytes(MAX + 1, char);
    // The premise: measured in UTF-16 units the event looks small enough.
    expect(JSON.stringify(event).length).toBeLessThan(MAX);
    expect((await rejectOne(event)).code).toBe("event_too_large");
    await acceptOne(eventOfBytes(MAX, char));
  });
});

describe("normalizeEvents: property bounds", () => {
  const nest = (levels: number, leaf: unknown): Record<string, unknown> => {
    let value: unknown = leaf;
    for (let i = levels; i >= 1; i--) value = { [`l${i}`]: value };
    return value as Record<string, unknown>;
  };
  const keysObject = (n: number, prefix = "k") =>
    Object.fromEntries(Array.from({ length: n }, (_, i) => [`${prefix}${i}`, i]));

  it.each<[string, Record<string, unknown>]>([
    ["values five keys deep", nest(5, "leaf")],
    ["arrays of objects inside the depth", { items: [{ sku: "a", qty: 1 }] }],
    ["exactly 200 keys", keysObject(200)],
    ["200 keys across nesting levels", { ...keysObject(149), inner: keysObject(50, "i") }],
    ["a key of 128 characters", { ["k".repeat(128)]: 1 }],
    ["a string of 8192 characters", { s: "x".repeat(8192) }],
    ["null, numbers and booleans", { a: null, b: 1.5, c: false }],
  ])("accepted: %s", async (_label, properties) => {
    const event = await acceptOne({ name: "a", properties });
    expect(event.properties).toEqual(properties);
  });

  it.each<[string, Record<string, unknown>, RegExp]>([
    ["nesting deeper than 5", nest(6, "leaf"), /^properties\.l1\.l2\.l3\.l4\.l5: nested deeper than 5/],
    ["an empty object deeper than 5", nest(5, {}), /nested deeper than 5/],
    ["arrays count as nesting", { a: [[[[["x"]]]]] }, /nested deeper than 5/],
    ["more than 200 keys", keysObject(201), /more than 200 keys/],
    [
      "more than 200 keys across nesting levels",
      { ...keysObject(150), inner: keysObject(50, "i") },
      /more than 200 keys/,
    ],
    ["a key longer than 128", { ["k".repeat(129)]: 1 }, /key longer than 128/],
    ["a nested key longer than 128", { o: { ["k".repeat(129)]: 1 } }, /^properties\.o: key longer than 128/],
    ["a string longer than 8192", { s: "x".repeat(8193) }, /^properties\.s: string longer than 8192/],
    [
      "a long string inside an array",
      { list: ["ok", "x".repeat(8193)] },
      /^properties\.list\.1: string longer/,
    ],
  ])("invalid_event: %s", async (_label, properties, message) => {
    const rejection = await rejectOne({ name: "a", properties });
    expect(rejection.code).toBe("invalid_event");
    expect(rejection.message).toMatch(message);
  });
});

describe("normalizeEvents: device, geo and ad ids", () => {
  it("without device fields from the SDK, the parsed User-Agent fills them; geo comes from the request", async () => {
    const event = await acceptOne({ name: "a" });
    expect(event).toMatchObject({
      os: "iOS",
      osVersion: "17.4",
      deviceModel: "iPhone",
      browser: "Mobile Safari",
      country: "DE",
      region: "Bavaria",
    });
  });

  it("device fields the SDK sent win over the parsed User-Agent", async () => {
    const event = await acceptOne({
      name: "a",
      device: { os: "iPadOS", osVersion: "17.5.1", model: "iPad14,1" },
    });
    expect(event).toMatchObject({ os: "iPadOS", osVersion: "17.5.1", deviceModel: "iPad14,1" });
    expect(event.browser).toBe("Mobile Safari");
  });

  it("a partial device object only overrides what it carries", async () => {
    const event = await acceptOne({ name: "a", device: { model: "iPhone15,2" } });
    expect(event).toMatchObject({ os: "iOS", osVersion: "17.4", deviceModel: "iPhone15,2" });
  });

  it("no User-Agent and no device → nulls, not made-up values", async () => {
    const empty: ParsedUserAgent = { os: null, osVersion: null, browser: null, deviceModel: null };
    const event = await acceptOne(
      { name: "a" },
      undefined,
      ctx({ userAgent: empty, country: null, region: null }),
    );
    expect(event).toMatchObject({
      os: null,
      osVersion: null,
      deviceModel: null,
      browser: null,
      country: null,
      region: null,
    });
  });

  const IDFA = "6D92078A-8246-4BA4-AE5B-76104861E7DC";
  const GAID = "38400000-8cf0-11bd-b23e-10b96e40000d";

  it.each<[string, Record<string, unknown>, QueuedEvent["adIds"], boolean | null]>([
    ["consent.ads false → no ad ids", { idfa: IDFA, gaid: GAID, ads: false }, undefined, false],
    [
      "consent.ads true → both ad ids",
      { idfa: IDFA, gaid: GAID, ads: true },
      { idfa: IDFA, gaid: GAID },
      true,
    ],
    ["consent not stated → ad ids kept, consentAds null", { idfa: IDFA }, { idfa: IDFA }, null],
    ["all-zero IDFA is dropped", { idfa: ZERO_AD_ID, ads: true }, undefined, true],
    ["all-zero IDFA dropped, real GAID kept", { idfa: ZERO_AD_ID, gaid: GAID }, { gaid: GAID }, null],
    ["all-zero GAID is dropped", { gaid: ZERO_AD_ID }, undefined, null],
    ["consent.ads false with no ad ids", { ads: false }, undefined, false],
  ])("%s", async (_label, input, adIds, consentAds) => {
    const { ads, ...ids } = input;
    const event = await acceptOne({
      name: "a",
      device: ids,
      ...(ads === undefined ? {} : { consent: { ads } }),
    });
    expect(event.adIds).toEqual(adIds);
    if (adIds === undefined) expect(event).not.toHaveProperty("adIds");
    expect(event.consentAds).toBe(consentAds);
  });

  it("with consent.ads false no ad id appears anywhere in the output", async () => {
    const { accepted } = await normalizeEvents(
      [{ name: "a", device: { idfa: IDFA, gaid: GAID }, consent: { ads: false } }],
      undefined,
      ctx(),
    );
    const json = JSON.stringify(accepted);
    expect(json).not.toContain(IDFA);
    expect(json).not.toContain(GAID);
  });
});

describe("normalizeEvents: personal data", () => {
  const EMAIL = "  Alice.Personal@Example.COM ";
  const PHONE = "+1 (555) 010-0000";
  const IP = "203.0.113.77";
  const UA =
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1";

  it("hashes email and phone with the documented rules", async () => {
    const event = await acceptOne({ name: "a", email: EMAIL, phone: PHONE });
    expect(event.emailSha256).toBe(sha256("alice.personal@example.com"));
    expect(event.phoneSha256).toBe(sha256("15550100000"));
  });

  it("empty email and phone become null, not a hash of nothing", async () => {
    const event = await acceptOne({ name: "a", email: "   ", phone: "+-()" });
    expect(event.emailSha256).toBeNull();
    expect(event.phoneSha256).toBeNull();
  });

  it("no raw email, phone, User-Agent or IP appears anywhere in the output", async () => {
    const raw = {
      name: "signup",
      email: EMAIL,
      phone: PHONE,
      // Fields an SDK must not send; they are stripped, never passed on.
      ip: IP,
      ipAddress: IP,
      userAgent: UA,
      user_agent: UA,
      context: { ip: IP, userAgent: UA },
    };
    const { accepted } = await normalizeEvents([raw, { ...raw, eventId: "e-2" }], undefined, ctx());
    expect(accepted).toHaveLength(2);
    const json = JSON.stringify(accepted);
    for (const forbidden of [
      EMAIL.trim(),
      EMAIL.trim().toLowerCase(),
      PHONE,
      "15550100000",
      "5550100000",
      IP,
      UA,
      "iPhone OS 17_4",
    ]) {
      expect(json).not.toContain(forbidden);
    }
  });
});

describe("strings Postgres refuses", () => {
  it("an unpaired surrogate in any string or key is rejected; a proper pair (an emoji) is kept", async () => {
    const out = await normalizeEvents(
      [
        { eventId: "emoji", name: "open", properties: { mood: "\ud83d\ude00" } },
        { eventId: "high", name: "open", properties: { note: "a\ud800b" } },
        { eventId: "low", name: "\udc00open" },
        { eventId: "key", name: "open", properties: { "k\udbff": 1 } },
        { eventId: "nested", name: "open", properties: { a: [{ b: "\udfff" }] } },
      ],
      undefined,
      ctx(),
    );
    expect(out.accepted.map((e) => e.eventId)).toEqual(["emoji"]);
    expect(out.rejected.map((r) => [r.index, r.code])).toEqual([
      [1, "invalid_event"],
      [2, "invalid_event"],
      [3, "invalid_event"],
      [4, "invalid_event"],
    ]);
    expect(out.rejected[0]?.message).toContain("surrogate");
  });
});

describe("NUL characters", () => {
  it("an event with \\u0000 in any string is rejected; the others in the batch go on", async () => {
    const out = await normalizeEvents(
      [
        { eventId: "ok", name: "open" },
        { eventId: "nul-prop", name: "open", properties: { note: "a\u0000b" } },
        { eventId: "nul-user", name: "open", userId: "u\u0000" },
        { eventId: "nul-anon", name: "open", anonymousId: "a\u0000" },
      ],
      undefined,
      ctx(),
    );
    expect(out.accepted.map((e) => e.eventId)).toEqual(["ok"]);
    expect(out.rejected.map((r) => [r.index, r.code])).toEqual([
      [1, "invalid_event"],
      [2, "invalid_event"],
      [3, "invalid_event"],
    ]);
  });
});
