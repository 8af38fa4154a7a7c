import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { normalizeEvents } from "../../functions/ingest/normalizeEvents";
import { hashPhone, phoneE164Digits, relayPhoneHashes } from "../../shared/pii";

// The relay phone hashes: Meta wants digits with the country code and no leading zeros; TikTok wants E.164
// with the "+". Expected digests come from node:crypto or from the platforms' documents, never from the
// code under test.

const sha256 = (s: string) => createHash("sha256").update(s, "utf8").digest("hex");

describe("phoneE164Digits", () => {
  it.each([
    ["E.164 with spaces and symbols", "+1 (650) 555-1212", "16505551212"],
    ["Meta's example, written with the country code and no +", "1(650)555-1212", "16505551212"],
    ["Snap/Meta's UK example", "+44 844 412 4653", "448444124653"],
    ["the 00 international prefix", "0044 844 412 4653", "448444124653"],
    ["+ then a stray zero before the country code", "+0049 170 1234567", "491701234567"],
    ["dots and dashes", "+49.170.123-4567", "491701234567"],
    ["surrounding whitespace", "  +491701234567\n", "491701234567"],
    ["letters are removed (Meta: remove symbols, letters)", "tel: +1 650 555 1212", "16505551212"],
  ])("%s: %j → %j", (_label, raw, digits) => {
    expect(phoneE164Digits(raw)).toBe(digits);
  });

  it.each([
    ["national format with a trunk 0: the country is unknown", "0170 1234567"],
    ["a single leading zero, no symbols", "01701234567"],
    ["too short to be a number", "+49 12"],
    ["longer than E.164's 15 digits", "+49 1701 2345 6789 01"],
    ["no digits at all", "call me"],
  ])("%s (%j) → null: no relay hash rather than a wrong one", (_label, raw) => {
    expect(phoneE164Digits(raw)).toBeNull();
  });
});

describe("relayPhoneHashes", () => {
  it("matches Meta's documented digest for 1(650)555-1212 and hashes the E.164 form for TikTok", async () => {
    await expect(relayPhoneHashes("+1 (650) 555-1212")).resolves.toEqual({
      metaSha256: "e323ec626319ca94ee8bff2e4c87cf613be6ea19919ed1364124e16807ab3176",
      tiktokSha256: sha256("+16505551212"),
    });
  });

  it("matches the digest published for +44 844 412 4653 (digits only, country code kept)", async () => {
    const out = await relayPhoneHashes("+44 844 412 4653");
    expect(out?.metaSha256).toBe(sha256("448444124653"));
    expect(out?.metaSha256.startsWith("dc008fda46e2e64002cf2f82a4906236282d4")).toBe(true);
    expect(out?.tiktokSha256).toBe(sha256("+448444124653"));
  });

  it("00-prefixed numbers hash like their + form for both platforms (unlike the stored digits-only hash)", async () => {
    const plus = await relayPhoneHashes("+49 170 1234567");
    await expect(relayPhoneHashes("0049 170 1234567")).resolves.toEqual(plus);
    // The stored phone_sha256 keeps every digit (documented ingest rule): the relay must not reuse it here.
    await expect(hashPhone("0049 170 1234567")).resolves.toBe(sha256("00491701234567"));
  });

  it("the two platforms' hashes differ: one rule cannot serve both", async () => {
    const out = await relayPhoneHashes("+491701234567");
    expect(out?.metaSha256).not.toBe(out?.tiktokSha256);
  });

  it.each([
    ["lower-case digest", sha256("+16505551212")],
    ["upper-case digest", sha256("+16505551212").toUpperCase()],
  ])("a pre-hashed value (%s) is passed on as given, never hashed again", async (_label, given) => {
    const out = await relayPhoneHashes(`  ${given} `);
    expect(out).toEqual({ metaSha256: given.toLowerCase(), tiktokSha256: given.toLowerCase() });
    expect(out?.metaSha256).not.toBe(sha256(given));
  });

  it.each([null, undefined, "", "   ", "0170 1234567"])("%j → undefined", async (raw) => {
    await expect(relayPhoneHashes(raw)).resolves.toBeUndefined();
  });
});

describe("normalizeEvents puts the relay hashes on the queued event", () => {
  const ctx = {
    receivedAt: new Date("2026-11-23T12:00:00Z"),
    retentionDays: 400,
    country: "DE",
    region: null,
    userAgent: { os: null, osVersion: null, browser: null, deviceModel: null },
    bodyBytes: 200,
    bodyHasNul: false,
  };

  it("with a phone: both hashes, and no raw number anywhere in the queued event", async () => {
    const { accepted } = await normalizeEvents(
      [{ eventId: "e1", name: "purchase", phone: "+49 170 1234567" }],
      undefined,
      ctx,
    );
    expect(accepted[0]?.relayPhone).toEqual({
      metaSha256: sha256("491701234567"),
      tiktokSha256: sha256("+491701234567"),
    });
    expect(accepted[0]?.phoneSha256).toBe(sha256("491701234567"));
    const json = JSON.stringify(accepted);
    expect(json).not.toContain("1701234567");
  });

  it("without a country code, or with ads consent refused: no relay hashes (the stored hash is unaffected)", async () => {
    const { accepted } = await normalizeEvents(
      [
        { eventId: "e1", name: "purchase", phone: "0170 1234567" },
        { eventId: "e2", name: "purchase", phone: "+49 170 1234567", consent: { ads: false } },
        { eventId: "e3", name: "purchase" },
      ],
      undefined,
      ctx,
    );
    expect(accepted.map((e) => e.relayPhone)).toEqual([undefined, undefined, undefined]);
    expect(accepted[0]?.phoneSha256).toBe(sha256("01701234567"));
    expect(accepted[1]?.phoneSha256).toBe(sha256("491701234567"));
  });
});
