import { describe, expect, test } from "vitest";
import { buildRelayMessages } from "../../functions/relay/enqueueRelays";
import { metaEventName, tiktokEventName } from "../../functions/relay/eventNames";
import { parseRetryAfter, safeErrorText } from "../../functions/relay/http";
import { buildMetaEvents, META_MAX_EVENT_AGE_MS } from "../../functions/relay/meta";
import { buildTikTokEvents } from "../../functions/relay/tiktok";
import { hashEmail, phoneHashes } from "../../shared/pii";
import type { RelayEvent } from "../../shared/schemas/relay";
import { metaEventProblem, tiktokEventProblem } from "../support/fakePlatforms";
import { sha256 } from "../support/sha256";

// The payload builders against the platforms' documented normalization vectors and shapes (the same
// checks the fake platforms apply in the integration tests).

const NOW = new Date("2026-11-23T12:00:00Z");

function event(overrides: Partial<RelayEvent>): RelayEvent {
  return {
    eventId: "e1",
    name: "purchase",
    userId: "user-1",
    timestamp: NOW.toISOString(),
    appId: null,
    os: null,
    osVersion: null,
    deviceModel: null,
    browser: "Chrome",
    country: null,
    emailSha256: null,
    phoneSha256: null,
    phoneE164Sha256: null,
    properties: {},
    consentAds: null,
    ...overrides,
  };
}

describe("normalization vectors from the platforms' docs", () => {
  test("email: trimmed and lower-cased before hashing (Person@Example.com)", async () => {
    const hash = await hashEmail(" Person@Example.com ");
    expect(hash).toBe("542d240129883c019e106e3b1b2d3f3cb3537c43c425364de8e951d5a3083345");
    const [meta] = (await buildMetaEvents([event({ emailSha256: hash })], NOW)).items;
    const [tiktok] = (await buildTikTokEvents([event({ emailSha256: hash })])).items;
    expect(meta?.user_data.em).toEqual([hash]);
    expect(tiktok?.user.email).toBe(hash);
  });

  test("phone: Meta hashes digits with country code (448444124653), TikTok E.164 with '+'", async () => {
    const hashes = (await phoneHashes("+44 844 412 4653"))?.relay;
    expect(hashes?.metaSha256).toBe("dc008fda46e2e64002cf2f82a4906236282d431c4f75e5b60bfe79fc48546383");
    expect(hashes?.tiktokSha256).toBe(sha256("+448444124653"));
    const e = event({
      phoneSha256: hashes?.metaSha256 ?? null,
      phoneE164Sha256: hashes?.tiktokSha256 ?? null,
    });
    expect((await buildMetaEvents([e], NOW)).items[0]?.user_data.ph).toEqual([hashes?.metaSha256]);
    expect((await buildTikTokEvents([e])).items[0]?.user.phone).toBe(hashes?.tiktokSha256);
  });

  test("country: lower-case ISO code, hashed (us → 79adb2…); unknown countries are not sent", async () => {
    const built = await buildMetaEvents(
      [event({ country: "US" }), event({ eventId: "e2", country: "XX" })],
      NOW,
    );
    expect(built.items[0]?.user_data.country).toEqual([
      "79adb2a2fce5c6ba215fe5f27f532d4e7edbac4b6a5e09e1ef3a08084a904621",
    ]);
    expect(built.items[1]?.user_data.country).toBeUndefined();
  });

  test("external_id: the user id hashed; a user id that already is a SHA-256 digest is not hashed again", async () => {
    const digest = sha256("someone");
    const built = await buildMetaEvents(
      [event({ userId: "user-1" }), event({ eventId: "e2", userId: digest.toUpperCase() })],
      NOW,
    );
    expect(built.items.map((i) => i.user_data.external_id)).toEqual([[sha256("user-1")], [digest]]);
    expect((await buildTikTokEvents([event({ userId: digest })])).items[0]?.user.external_id).toBe(digest);
  });
});

describe("Meta payloads", () => {
  test("every built event passes the documented checks; names are layers_{name}; time in seconds", async () => {
    const built = await buildMetaEvents(
      [
        event({
          properties: {
            value: "12.50",
            currency: "usd",
            content_ids: [1, "b"],
            url: "https://shop.example/p",
          },
        }),
        event({ eventId: "app", browser: null, os: "Android", appId: "com.x", consentAds: null }),
      ],
      NOW,
    );
    for (const item of built.items) expect(metaEventProblem(item, NOW.getTime() / 1000)).toBeNull();
    expect(built.items[0]).toMatchObject({
      event_name: "layers_purchase",
      event_time: NOW.getTime() / 1000,
      action_source: "website",
      event_source_url: "https://shop.example/p",
      custom_data: { value: 12.5, currency: "USD", content_ids: ["1", "b"] },
    });
    expect(built.items[1]?.app_data).toMatchObject({
      advertiser_tracking_enabled: 0,
      extinfo: expect.any(Array),
    });
    expect(built.items[1]?.app_data?.extinfo[0]).toBe("a2");
  });

  test("left out with a reason, never failing the batch: older than 7 days, unusable name, nobody to match", async () => {
    const old = new Date(NOW.getTime() - META_MAX_EVENT_AGE_MS - 1000).toISOString();
    const built = await buildMetaEvents(
      [
        event({ eventId: "old", timestamp: old }),
        event({ eventId: "long", name: "x".repeat(40) }),
        event({ eventId: "anon", userId: null }),
        event({ eventId: "ok" }),
      ],
      NOW,
    );
    expect(built.sentIds).toEqual(["ok"]);
    expect(built.skipped).toEqual([
      { eventId: "old", reason: "too_old" },
      { eventId: "long", reason: "event_name_invalid" },
      { eventId: "anon", reason: "no_customer_information" },
    ]);
  });

  test("event names: characters Meta refuses become _, 40 characters at most", () => {
    expect(metaEventName("screen.view")).toBe("layers_screen_view");
    expect(metaEventName("a".repeat(33))).toBe(`layers_${"a".repeat(33)}`);
    expect(metaEventName("a".repeat(34))).toBeNull();
  });
});

describe("TikTok payloads", () => {
  test("standard events only, mapped by the documented table", async () => {
    expect(tiktokEventName("purchase")).toBe("CompletePayment");
    expect(tiktokEventName("Add_To_Cart")).toBe("AddToCart");
    expect(tiktokEventName("level_up")).toBeNull();
    const built = await buildTikTokEvents([
      event({ name: "begin_checkout", properties: { value: 3, currency: "eur", sku: "s1" } }),
      event({ eventId: "custom", name: "level_up" }),
    ]);
    expect(built.skipped).toEqual([{ eventId: "custom", reason: "not_a_standard_event" }]);
    expect(tiktokEventProblem(built.items[0])).toBeNull();
    expect(built.items[0]).toMatchObject({
      event: "InitiateCheckout",
      event_time: NOW.getTime() / 1000,
      properties: { value: 3, currency: "EUR", contents: [{ content_id: "s1" }] },
    });
  });
});

describe("failure handling helpers", () => {
  test("Retry-After in seconds or as an HTTP date, capped at the queue's 12 hours", () => {
    expect(parseRetryAfter("30", NOW)).toBe(30);
    expect(parseRetryAfter(new Date(NOW.getTime() + 90_000).toUTCString(), NOW)).toBe(90);
    expect(parseRetryAfter("999999", NOW)).toBe(43_200);
    expect(parseRetryAfter("soon", NOW)).toBeNull();
  });

  test("error texts lose tokens and personal data before they are stored or logged", () => {
    const text = safeErrorText("Invalid token EAAsecret123 for jane@example.com from 10.1.2.3", [
      "EAAsecret123",
    ]);
    expect(text).not.toContain("EAAsecret123");
    expect(text).not.toContain("jane@example.com");
    expect(text).not.toContain("10.1.2.3");
    expect(safeErrorText("x".repeat(1000), []).length).toBe(300);
  });
});

describe("relay messages from an events message", () => {
  const queued = (i: number, extra: Record<string, unknown> = {}) => ({
    eventId: `q${i}`,
    name: "purchase",
    userId: `u${i}`,
    timestamp: NOW.toISOString(),
    appId: null,
    os: "iOS",
    osVersion: null,
    deviceModel: null,
    browser: null,
    country: "DE",
    region: null,
    emailSha256: null,
    phoneSha256: null,
    properties: {},
    consentAds: true,
    adIds: { idfa: `IDFA-${i}` },
    ...extra,
  });
  const message = (events: ReturnType<typeof queued>[]) => ({
    v: 1 as const,
    orgId: "org_x",
    projectId: "proj_x",
    receivedAt: NOW.toISOString(),
    events,
  });

  test("batches within the platforms' and the queue's limits; only the listed ids; consent refused goes nowhere", () => {
    const events = Array.from({ length: 2501 }, (_, i) => queued(i));
    events.push(queued(9999, { consentAds: false }));
    const ids = new Set(events.map((e) => e.eventId).filter((id) => id !== "q0"));
    const out = buildRelayMessages(message(events), ids, [{ kind: "tiktok", sendDeviceIds: false }], NOW);
    // Each message: ≤ 1,000 events (the platforms' limit) and ≤ 120 KB (the queue's); nothing lost.
    for (const m of out) {
      expect(m.events.length).toBeLessThanOrEqual(1000);
      expect(new TextEncoder().encode(JSON.stringify(m)).byteLength).toBeLessThanOrEqual(120 * 1024);
    }
    expect(out.reduce((n, m) => n + m.events.length, 0)).toBe(2500);
    const sent = out.flatMap((m) => m.events.map((e) => e.eventId));
    expect(sent).not.toContain("q0");
    expect(sent).not.toContain("q9999");
    expect(new Set(out.map((m) => m.batchId)).size).toBe(out.length);
  });

  test("device ids go only to Meta, only when the partner enabled it; Apple gets only events with a token", () => {
    const events = [queued(1), { ...queued(2), adServicesToken: "ADSERVICES-TOKEN-1" }];
    const ids = new Set(["q1", "q2"]);
    const [metaOn] = buildRelayMessages(message(events), ids, [{ kind: "meta", sendDeviceIds: true }], NOW);
    const [metaOff] = buildRelayMessages(message(events), ids, [{ kind: "meta", sendDeviceIds: false }], NOW);
    const [tiktok] = buildRelayMessages(
      message(events),
      ids,
      [{ kind: "tiktok", sendDeviceIds: false }],
      NOW,
    );
    const apple = buildRelayMessages(
      message(events),
      ids,
      [{ kind: "apple-search-ads", sendDeviceIds: false }],
      NOW,
    );
    expect(metaOn?.events.map((e) => e.madid)).toEqual(["IDFA-1", "IDFA-2"]);
    expect(metaOff?.events.some((e) => "madid" in e)).toBe(false);
    expect(JSON.stringify(tiktok)).not.toContain("IDFA-");
    expect(JSON.stringify(tiktok)).not.toContain("ADSERVICES-TOKEN-1");
    expect(apple.flatMap((m) => m.events.map((e) => [e.eventId, e.adServicesToken]))).toEqual([
      ["q2", "ADSERVICES-TOKEN-1"],
    ]);
  });
});
