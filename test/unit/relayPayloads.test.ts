import { describe, expect, test } from "vitest";
import { withoutRelayOnlyFields } from "../../functions/relay/deliveries";
import { buildRelayMessages } from "../../functions/relay/enqueueRelays";
import { metaEventName, tiktokEventName } from "../../functions/relay/eventNames";
import { parseRetryAfter, safeErrorText } from "../../functions/relay/http";
import { buildMetaEvents, META_MAX_EVENT_AGE_MS } from "../../functions/relay/meta";
import { defaultSendDeps, sendToDestination } from "../../functions/relay/send";
import { buildTikTokEvents } from "../../functions/relay/tiktok";
import { hashEmail, phoneHashes } from "../../shared/pii";
import type { RelayEvent } from "../../shared/schemas/relay";
import { metaEventProblem, startFakePlatforms, tiktokEventProblem } from "../support/fakePlatforms";
import { sha256 } from "../support/sha256";

// The payload builders against the platforms' documented normalization vectors and shapes (the same
// checks the fake platforms apply in the integration tests).

const NOW = new Date("2026-11-23T12:00:00Z");
const CHROME_UA =
  "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36";

/** A website event (a browser, no mobile app) with what Meta requires of one, unless overridden. */
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
    userAgent: CHROME_UA,
    pageUrl: "https://shop.example/checkout",
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
          pageUrl: undefined,
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

  test("website events: the raw User-Agent as client_user_agent, the page URL as event_source_url", async () => {
    const built = await buildMetaEvents([event({ eventId: "web" })], NOW);
    expect(built.skipped).toEqual([]);
    expect(built.items[0]).toMatchObject({
      action_source: "website",
      event_source_url: "https://shop.example/checkout",
      user_data: { client_user_agent: CHROME_UA },
    });
    expect(built.items[0]?.app_data).toBeUndefined();
    expect(metaEventProblem(built.items[0], NOW.getTime() / 1000)).toBeNull();
  });

  test("the url property stands in for pageUrl, without its query string, fragment or credentials", async () => {
    const built = await buildMetaEvents(
      [
        event({
          pageUrl: undefined,
          properties: {
            url: "https://jane:pw@shop.example/p/1?email=jane%40example.com&token=abc#access_token=x",
          },
        }),
        event({ eventId: "ftp", pageUrl: undefined, properties: { page_url: "ftp://shop.example/p" } }),
      ],
      NOW,
    );
    expect(built.items[0]?.event_source_url).toBe("https://shop.example/p/1");
    expect(built.skipped).toEqual([{ eventId: "ftp", reason: "no_event_source_url" }]);
  });

  test("a website event without a User-Agent or a page URL is left out with its reason; the rest are sent", async () => {
    const built = await buildMetaEvents(
      [
        event({ eventId: "no-ua", userAgent: undefined }),
        event({ eventId: "no-url", pageUrl: undefined }),
        // No browser and no mobile OS: Meta gets it as a website event, so the same rule applies.
        event({ eventId: "server", browser: null, userAgent: undefined, pageUrl: undefined }),
        event({ eventId: "ok" }),
        // App events need neither: action_source app with app_data, no User-Agent sent.
        event({
          eventId: "app",
          browser: null,
          os: "iOS",
          appId: "com.x",
          userAgent: CHROME_UA,
          pageUrl: undefined,
        }),
      ],
      NOW,
    );
    expect(built.skipped).toEqual([
      { eventId: "no-ua", reason: "no_client_user_agent" },
      { eventId: "no-url", reason: "no_event_source_url" },
      { eventId: "server", reason: "no_client_user_agent" },
    ]);
    expect(built.sentIds).toEqual(["ok", "app"]);
    const app = built.items[1];
    expect(app).toMatchObject({ action_source: "app", app_data: { extinfo: expect.any(Array) } });
    expect(app?.user_data.client_user_agent).toBeUndefined();
    expect(app?.event_source_url).toBeUndefined();
    for (const item of built.items) expect(metaEventProblem(item, NOW.getTime() / 1000)).toBeNull();
  });

  test("the fake Meta refuses what Meta refuses: website events without client_user_agent or event_source_url, app events without app_data", () => {
    const now = NOW.getTime() / 1000;
    const base = {
      event_name: "layers_x",
      event_time: now,
      event_id: "e",
      user_data: { external_id: [sha256("u")] },
    };
    const web = {
      ...base,
      action_source: "website",
      event_source_url: "https://shop.example/",
      user_data: { ...base.user_data, client_user_agent: CHROME_UA },
    };
    expect(metaEventProblem(web, now)).toBeNull();
    expect(metaEventProblem({ ...web, user_data: base.user_data }, now)).toMatch(
      /client_user_agent is required/,
    );
    expect(metaEventProblem({ ...web, event_source_url: undefined }, now)).toMatch(
      /event_source_url is required/,
    );
    expect(metaEventProblem({ ...web, event_source_url: "shop.example" }, now)).toMatch(/event_source_url/);
    expect(
      metaEventProblem(
        { ...web, user_data: { ...base.user_data, client_user_agent: sha256(CHROME_UA) } },
        now,
      ),
    ).toMatch(/must not be hashed/);
    expect(metaEventProblem({ ...base, action_source: "app" }, now)).toMatch(/app_data is required/);
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

describe("error texts", () => {
  test("a platform error that echoes a User-Agent is recorded without it", async () => {
    const fakes = await startFakePlatforms();
    try {
      const datasetId = "700000000000009";
      fakes.meta.tokens.set(datasetId, "EAAtoken-for-error-text");
      // Graph API errors may quote the offending parameter's value.
      fakes.meta.failNext(1, {
        kind: "status",
        status: 400,
        message: `Invalid parameter: client_user_agent "${CHROME_UA}"`,
      });
      const outcome = await sendToDestination(
        {
          kind: "meta",
          orgId: "org_x",
          projectId: "proj_x",
          enabled: true,
          status: "active",
          datasetId,
          accessToken: "EAAtoken-for-error-text",
          testEventCode: null,
          sendDeviceIds: false,
        },
        [event({ eventId: "echo" })],
        {
          metaApiBase: fakes.vars.META_API_BASE,
          tiktokApiBase: fakes.vars.TIKTOK_API_BASE,
          appleAdServicesUrl: fakes.vars.APPLE_ADSERVICES_URL,
          timeoutMs: 5_000,
          appleNotFoundRetryIntervalMs: 0,
        },
        { ...defaultSendDeps, now: () => new Date() },
      );
      expect(outcome.kind).toBe("rejected");
      const error = outcome.kind === "rejected" ? outcome.error : "";
      expect(error).toContain("Invalid parameter: client_user_agent");
      expect(error).not.toContain("Mozilla/5.0");
    } finally {
      await fakes.close();
    }
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

  test("the User-Agent goes only to Meta, only for website events; the page URL to Meta and TikTok", () => {
    const web = { os: "Windows", browser: "Chrome", userAgent: CHROME_UA, pageUrl: "https://shop.example/" };
    const events = [
      queued(1, { ...web, adServicesToken: "ADSERVICES-TOKEN-1" }),
      queued(2, { userAgent: "Layers/1.0 (iPhone; iOS 18.1)", adServicesToken: "ADSERVICES-TOKEN-2" }),
    ];
    const ids = new Set(["q1", "q2"]);
    const targets = [
      { kind: "meta" as const, sendDeviceIds: false },
      { kind: "tiktok" as const, sendDeviceIds: false },
      { kind: "apple-search-ads" as const, sendDeviceIds: false },
    ];
    const out = buildRelayMessages(message(events), ids, targets, NOW);
    const of = (kind: string) => out.filter((m) => m.destination === kind).flatMap((m) => m.events);
    expect(of("meta").map((e) => [e.eventId, e.userAgent, e.pageUrl])).toEqual([
      ["q1", CHROME_UA, "https://shop.example/"],
      ["q2", undefined, undefined], // an app event: Meta does not need its User-Agent
    ]);
    expect(of("tiktok").map((e) => [e.eventId, e.userAgent, e.pageUrl])).toEqual([
      ["q1", undefined, "https://shop.example/"],
      ["q2", undefined, undefined],
    ]);
    expect(JSON.stringify(of("apple-search-ads"))).not.toContain(CHROME_UA);
    expect(JSON.stringify(of("apple-search-ads"))).not.toContain("shop.example");
  });

  test("a dead letter keeps no relay-only field: device id, AdServices token, User-Agent, page URL", () => {
    const e = event({ madid: "IDFA-1", adServicesToken: "ADSERVICES-TOKEN-1" });
    const [stored] = withoutRelayOnlyFields([e]);
    expect(Object.keys(stored ?? {}).sort()).toEqual(
      Object.keys(e)
        .filter((k) => !["madid", "adServicesToken", "userAgent", "pageUrl"].includes(k))
        .sort(),
    );
    const json = JSON.stringify(stored);
    for (const gone of ["IDFA-1", "ADSERVICES-TOKEN-1", CHROME_UA, "shop.example"])
      expect(json).not.toContain(gone);
  });
});
