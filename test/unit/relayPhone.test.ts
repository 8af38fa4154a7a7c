import { describe, expect, it } from "vitest";
import { type IngestContext, normalizeEvents } from "../../functions/ingest/normalizeEvents";
import { sha256 } from "../support/sha256";

// At the edge a phone is placed in a region before it is hashed: the event's own phoneCountry, else the
// request's geo country. The stored hash and both relay hashes come from that one reading; the raw number
// goes no further. Expected digests come from node:crypto, never from the code under test.

function ctx(country: string | null): IngestContext {
  return {
    receivedAt: new Date("2026-11-23T12:00:00Z"),
    retentionDays: 400,
    country,
    region: null,
    userAgent: { os: null, osVersion: null, browser: null, deviceModel: null },
    bodyBytes: 200,
    bodyMayHoldUnstorableText: false,
  };
}

const US_PHONE = {
  phoneSha256: sha256("16505551212"),
  relayPhone: { metaSha256: sha256("16505551212"), tiktokSha256: sha256("+16505551212") },
};

describe("normalizeEvents places and hashes phones", () => {
  it("a US-geo national number: stored and relayed as +1 650 555 1212, no raw number anywhere", async () => {
    const { accepted } = await normalizeEvents(
      [{ eventId: "e1", name: "purchase", phone: "(650)555-1212" }],
      undefined,
      ctx("US"),
    );
    expect(accepted[0]).toMatchObject(US_PHONE);
    const json = JSON.stringify(accepted);
    expect(json).not.toContain("5551212");
    expect(json).not.toContain("555-1212");
  });

  it("0049 …, +49 … and a German national number are one number: one stored hash, one pair of relay hashes", async () => {
    const { accepted } = await normalizeEvents(
      [
        { eventId: "e1", name: "purchase", phone: "0049 170 1234567" },
        { eventId: "e2", name: "purchase", phone: "+49 170 1234567" },
        { eventId: "e3", name: "purchase", phone: "0170 1234567" },
      ],
      undefined,
      ctx("DE"),
    );
    for (const event of accepted) {
      expect(event, event.eventId).toMatchObject({
        phoneSha256: sha256("491701234567"),
        relayPhone: { metaSha256: sha256("491701234567"), tiktokSha256: sha256("+491701234567") },
      });
    }
  });

  it("the event's phoneCountry (any case) wins over the geo country; the stored country stays the geo one", async () => {
    const { accepted, rejected } = await normalizeEvents(
      [
        { eventId: "e1", name: "purchase", phone: "(650)555-1212", phoneCountry: "us" },
        { eventId: "e2", name: "purchase", phone: "(650)555-1212", phoneCountry: "US" },
      ],
      undefined,
      ctx("DE"),
    );
    expect(rejected).toEqual([]);
    for (const event of accepted) expect(event).toMatchObject({ ...US_PHONE, country: "DE" });
  });

  it("the same raw number in one batch is placed per event: different regions, different numbers", async () => {
    const { accepted } = await normalizeEvents(
      [
        { eventId: "e1", name: "purchase", phone: "020 7946 0958", phoneCountry: "GB" },
        { eventId: "e2", name: "purchase", phone: "020 7946 0958" },
      ],
      undefined,
      ctx("DE"),
    );
    expect(accepted[0]?.phoneSha256).toBe(sha256("442079460958"));
    // Read in Germany, 020 … is a (not valid) German number, not the London one.
    expect(accepted[1]?.phoneSha256).not.toBe(sha256("442079460958"));
  });

  it.each([
    ["not a two-letter code", "USA"],
    ["not a country", "XX"],
    ["the UK's ISO code is GB", "UK"],
    ["not a string", 49],
    ["empty", ""],
  ])("phoneCountry %s (%j) → the event is refused as invalid_event", async (_label, phoneCountry) => {
    const { accepted, rejected } = await normalizeEvents(
      [{ eventId: "e1", name: "purchase", phone: "(650)555-1212", phoneCountry }],
      undefined,
      ctx("US"),
    );
    expect(accepted).toEqual([]);
    expect(rejected).toEqual([
      { index: 0, code: "invalid_event", message: expect.stringContaining("phoneCountry") },
    ]);
  });

  it("no region to place a national number in: digits as sent are stored, nothing is relayed", async () => {
    const { accepted } = await normalizeEvents(
      [
        { eventId: "e1", name: "purchase", phone: "(650)555-1212" },
        { eventId: "e2", name: "purchase", phone: "0170 1234567" },
      ],
      undefined,
      ctx(null),
    );
    expect(accepted.map((e) => e.phoneSha256)).toEqual([sha256("6505551212"), sha256("01701234567")]);
    expect(accepted.map((e) => e.relayPhone)).toEqual([undefined, undefined]);
  });

  it("an invalid number, or refused ads consent: no relay hashes (the stored hash is unaffected)", async () => {
    const { accepted } = await normalizeEvents(
      [
        { eventId: "e1", name: "purchase", phone: "+1 555 010 0000" },
        { eventId: "e2", name: "purchase", phone: "+49 170 1234567", consent: { ads: false } },
        { eventId: "e3", name: "purchase" },
      ],
      undefined,
      ctx("DE"),
    );
    expect(accepted.map((e) => e.relayPhone)).toEqual([undefined, undefined, undefined]);
    expect(accepted.map((e) => e.phoneSha256)).toEqual([sha256("15550100000"), sha256("491701234567"), null]);
  });
});
