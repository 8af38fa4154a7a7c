import { describe, expect, it } from "vitest";
import { type IngestContext, normalizeEvents } from "../../functions/ingest/normalizeEvents";
import { commerceFrom } from "../../functions/relay/commerce";
import { metaEventName, tiktokEventName } from "../../functions/relay/eventNames";
import { countSkips, type SkipReason } from "../../functions/relay/skips";
import { buildTikTokEvents } from "../../functions/relay/tiktok";
import { REDACTED, redact } from "../../shared/logger";
import { queuedEventSchema } from "../../shared/schemas/queue";
import { relayEventSchema } from "../../shared/schemas/relay";
import { sdkEventSchema } from "../../shared/schemas/sdk-event";

// Event names and property keys are the partner's strings. Named like an Object.prototype member, they
// must behave like any other unknown name: never find an inherited member, never set a prototype, never
// be dropped.

const NAMES = ["constructor", "__proto__", "toString", "hasOwnProperty", "valueOf"];

/** Properties as JSON.parse makes them: "__proto__" is an own key, not the prototype. */
const PROPERTIES_JSON =
  '{"__proto__":{"value":999,"currency":"EUR","url":"https://evil.example/"},"constructor":"c","toString":"t","hasOwnProperty":1,"valueOf":2,"plan":"pro"}';
const properties = () => JSON.parse(PROPERTIES_JSON) as Record<string, unknown>;

describe("event names", () => {
  it.each(NAMES)("%s is not a TikTok standard event", (name) => {
    expect(tiktokEventName(name)).toBeNull();
    expect(tiktokEventName(name.toUpperCase())).toBeNull();
  });

  it.each(NAMES)("%s goes to Meta under our prefix, like any custom name", (name) => {
    expect(metaEventName(name)).toBe(`layers_${name}`);
  });

  it("TikTok skips them as not_a_standard_event and still sends the rest", async () => {
    const base = {
      userId: "u",
      timestamp: new Date().toISOString(),
      appId: null,
      os: null,
      osVersion: null,
      deviceModel: null,
      browser: null,
      country: null,
      emailSha256: null,
      phoneSha256: null,
      phoneE164Sha256: null,
      properties: {},
      consentAds: null,
    };
    const built = await buildTikTokEvents([
      ...NAMES.map((name) => ({ ...base, eventId: name, name })),
      { ...base, eventId: "buy", name: "purchase" },
    ]);
    expect(built.sentIds).toEqual(["buy"]);
    expect(built.skipped).toEqual(NAMES.map((eventId) => ({ eventId, reason: "not_a_standard_event" })));
  });
});

describe("counting skips", () => {
  it("counts every reason as an own number, whatever it is called", () => {
    const reasons = ["too_old", "constructor", "__proto__", "toString", "too_old"] as SkipReason[];
    const counts = countSkips(reasons.map((reason, i) => ({ eventId: `e${i}`, reason })));
    expect(JSON.parse(JSON.stringify(counts))).toEqual(
      JSON.parse('{"too_old":2,"constructor":1,"__proto__":1,"toString":1}'),
    );
    expect(Object.getPrototypeOf(counts)).toBe(Object.prototype);
  });
});

describe("commerce fields from properties", () => {
  it("reads only the properties' own keys: prototype-named keys add nothing", () => {
    expect(commerceFrom(properties())).toEqual({});
  });

  it("an inherited value (a prototype some code set) is not a property the SDK sent", () => {
    const inherited = Object.setPrototypeOf({ plan: "pro" }, { value: 5, currency: "USD", order_id: "o-1" });
    expect(commerceFrom(inherited)).toEqual({});
    expect(commerceFrom({ value: 5, currency: "usd" })).toEqual({ value: 5, currency: "USD" });
  });
});

describe("schemas keep every property key", () => {
  const ownKeys = (o: object) => Object.keys(o).sort();

  it("sdk event: __proto__ stays an own key, the prototype stays Object.prototype", () => {
    const parsed = sdkEventSchema.parse(JSON.parse(`{"name":"view","properties":${PROPERTIES_JSON}}`));
    const p = parsed.properties ?? {};
    expect(ownKeys(p)).toEqual(ownKeys(properties()));
    expect(Object.getPrototypeOf(p)).toBe(Object.prototype);
    expect(JSON.stringify(p)).toBe(PROPERTIES_JSON);
  });

  it("queue and relay messages: the same keys come out as went in", () => {
    const event = {
      eventId: "e",
      name: "__proto__",
      userId: null,
      timestamp: new Date().toISOString(),
      appId: null,
      os: null,
      osVersion: null,
      deviceModel: null,
      browser: null,
      country: null,
      region: null,
      emailSha256: null,
      phoneSha256: null,
      phoneE164Sha256: null,
      properties: properties(),
      consentAds: null,
    };
    const wire = JSON.parse(JSON.stringify(event));
    expect(JSON.stringify(queuedEventSchema.parse(wire).properties)).toBe(PROPERTIES_JSON);
    expect(JSON.stringify(relayEventSchema.parse(wire).properties)).toBe(PROPERTIES_JSON);
  });

  it("still refuses properties that are not an object", () => {
    for (const bad of [[], "x", 1, null]) {
      expect(sdkEventSchema.safeParse({ name: "view", properties: bad }).success).toBe(false);
    }
  });

  it("normalizeEvents passes such names and keys through unchanged", async () => {
    const ctx: IngestContext = {
      receivedAt: new Date(),
      retentionDays: 400,
      country: null,
      region: null,
      userAgent: { os: null, osVersion: null, browser: null, deviceModel: null },
      bodyBytes: 1024,
      bodyMayHoldUnstorableText: false,
    };
    const raws = JSON.parse(
      `[${NAMES.map((name) => `{"eventId":"${name}","name":"${name}","properties":${PROPERTIES_JSON}}`).join(",")}]`,
    );
    const { accepted, rejected } = await normalizeEvents(raws, undefined, ctx);
    expect(rejected).toEqual([]);
    expect(accepted.map((e) => e.name)).toEqual(NAMES);
    for (const e of accepted) expect(JSON.stringify(e.properties)).toBe(PROPERTIES_JSON);
  });
});

describe("log redaction", () => {
  it("a __proto__ key is logged (redacted) as a field, never turned into the copy's prototype", () => {
    const out = redact(JSON.parse('{"__proto__":{"email":"a@b.example","n":1},"constructor":"c"}')) as object;
    expect(Object.getPrototypeOf(out)).toBe(Object.prototype);
    expect(JSON.parse(JSON.stringify(out))).toEqual(
      JSON.parse(`{"__proto__":{"email":"${REDACTED}","n":1},"constructor":"c"}`),
    );
  });
});
