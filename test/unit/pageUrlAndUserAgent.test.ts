import { describe, expect, it } from "vitest";
import { type IngestContext, normalizeEvents } from "../../functions/ingest/normalizeEvents";
import { boundedUserAgent, parseUserAgent } from "../../functions/ingest/parseUserAgent";
import { pageUrlForRelay } from "../../shared/pageUrl";
import { queuedEventSchema } from "../../shared/schemas/queue";
import { unstorableText } from "../../shared/storableText";

// The two fields Meta requires of website events, as the edge prepares them: the request's User-Agent
// (bounded, only for the relays, gone with ads consent refused) and the SDK's pageUrl (validated per
// event, relayed without query string, fragment or credentials).

const UA =
  "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36";

function ctx(overrides: Partial<IngestContext> = {}): IngestContext {
  return {
    receivedAt: new Date("2025-03-10T12:00:00.000Z"),
    retentionDays: 400,
    country: "DE",
    region: null,
    userAgent: parseUserAgent(UA),
    relayUserAgent: boundedUserAgent(UA),
    bodyBytes: 1024,
    bodyMayHoldUnstorableText: false,
    ...overrides,
  };
}

async function normalize(raws: unknown[], context = ctx()) {
  return normalizeEvents(raws, undefined, context);
}

describe("the User-Agent for Meta", () => {
  it("rides with each event whose ads consent was not refused, as the request sent it", async () => {
    const { accepted } = await normalize([
      { eventId: "a", name: "view" },
      { eventId: "b", name: "view", consent: { ads: true } },
      { eventId: "c", name: "view", consent: { ads: false } },
    ]);
    expect(accepted.map((e) => [e.eventId, e.userAgent])).toEqual([
      ["a", UA],
      ["b", UA],
      ["c", undefined],
    ]);
    for (const e of accepted) expect(queuedEventSchema.safeParse(e).success).toBe(true);
  });

  it("is cut to 512 characters (as the parser reads it); absent or blank means none", async () => {
    const long = `${UA} ${"x".repeat(10_000)}`;
    expect(boundedUserAgent(long)).toBe(long.slice(0, 512));
    expect(boundedUserAgent(undefined)).toBeNull();
    expect(boundedUserAgent("   ")).toBeNull();
    const { accepted } = await normalize([{ name: "view" }], ctx({ relayUserAgent: boundedUserAgent(long) }));
    expect(accepted[0]?.userAgent).toHaveLength(512);
    expect(queuedEventSchema.safeParse(accepted[0]).success).toBe(true);
    const none = await normalize([{ name: "view" }], ctx({ relayUserAgent: null }));
    expect(none.accepted[0]).not.toHaveProperty("userAgent");
  });

  it("a userAgent field in the event body is not it: SDKs cannot set what Meta receives", async () => {
    const { accepted } = await normalize(
      [{ name: "view", userAgent: "forged" }],
      ctx({ relayUserAgent: null }),
    );
    expect(JSON.stringify(accepted)).not.toContain("forged");
  });
});

describe("pageUrl", () => {
  it.each([
    ["https://shop.example/p/1", "https://shop.example/p/1"],
    ["http://shop.example", "http://shop.example/"],
    ["https://shop.example/cart?email=jane%40example.com&utm_source=x", "https://shop.example/cart"],
    ["https://shop.example/cb#access_token=secret", "https://shop.example/cb"],
    ["https://jane:hunter2@shop.example/account", "https://shop.example/account"],
    ["HTTPS://Shop.Example:443/Path", "https://shop.example/Path"],
  ])("%s is relayed as %s", async (raw, relayed) => {
    expect(pageUrlForRelay(raw)).toBe(relayed);
    const { accepted, rejected } = await normalize([{ name: "view", pageUrl: raw }]);
    expect(rejected).toEqual([]);
    expect(accepted[0]?.pageUrl).toBe(relayed);
    expect(queuedEventSchema.safeParse(accepted[0]).success).toBe(true);
  });

  it.each([
    ["a relative path", "/checkout"],
    ["no scheme", "shop.example/checkout"],
    ["javascript:", "javascript:alert(1)"],
    ["ftp:", "ftp://shop.example/file"],
    ["a data: URL", "data:text/html,hi"],
    ["an empty string", ""],
    ["not a string", 42],
    ["longer than 2,048 characters", `https://shop.example/${"a".repeat(2030)}`],
    // 700 characters that percent-encode to 6,300: too long once in the form that would be relayed.
    ["longer than 2,048 characters once percent-encoded", `https://shop.example/${"é".repeat(700)}`],
  ])("%s is refused for that event alone (invalid_event)", async (_label, pageUrl) => {
    const { accepted, rejected } = await normalize([
      { eventId: "bad", name: "view", pageUrl },
      { eventId: "ok", name: "view" },
    ]);
    expect(accepted.map((e) => e.eventId)).toEqual(["ok"]);
    expect(rejected).toEqual([
      { index: 0, code: "invalid_event", message: expect.stringMatching(/^pageUrl: /) },
    ]);
  });

  it("a URL of exactly 2,048 characters is accepted", async () => {
    const url = `https://shop.example/${"a".repeat(2048 - 21)}`;
    expect(url).toHaveLength(2048);
    const { accepted } = await normalize([{ name: "view", pageUrl: url }]);
    expect(accepted[0]?.pageUrl).toBe(url);
  });

  it("is left out with ads consent refused (it exists only for the relays), and when null or absent", async () => {
    const { accepted } = await normalize([
      { eventId: "refused", name: "view", pageUrl: "https://shop.example/", consent: { ads: false } },
      { eventId: "null", name: "view", pageUrl: null },
      { eventId: "absent", name: "view" },
    ]);
    for (const e of accepted) expect(e).not.toHaveProperty("pageUrl");
  });
});

describe("bounding a User-Agent", () => {
  it("never keeps half of a surrogate pair cut at character 512", async () => {
    // Segment's context.userAgent is JSON, so it can hold an emoji where a header could not.
    const long = `${"a".repeat(511)}\ud83d\ude00 tail`;
    const bounded = boundedUserAgent(long);
    expect(bounded).toBe("a".repeat(511));
    expect(unstorableText(bounded)).toBeNull();
    const { accepted, rejected } = await normalize(
      [{ name: "view" }],
      ctx({ eventUserAgents: [long], bodyMayHoldUnstorableText: true }),
    );
    expect(rejected).toEqual([]);
    expect(accepted[0]?.userAgent).toBe("a".repeat(511));
  });
});
