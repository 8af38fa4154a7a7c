import { describe, expect, it } from "vitest";
import { isPhoneCountry, phoneRegion } from "../../shared/phone";
import { hashPhone, phoneHashes } from "../../shared/pii";
import { sha256 } from "../support/sha256";

// One phone number, one hash: stored (phone_sha256), looked up, deleted and sent to Meta as SHA-256 of the
// E.164 digits without "+"; TikTok gets SHA-256 of "+" and the same digits; no relay hash for a number
// libphonenumber does not consider valid. Expected digits are written out by hand and hashed with
// node:crypto, never computed by the code under test.

/** What every form of one valid number must hash to. */
function expected(digits: string, relayed: boolean) {
  return {
    sha256: sha256(digits),
    relay: relayed ? { metaSha256: sha256(digits), tiktokSha256: sha256(`+${digits}`) } : undefined,
  };
}

describe("the platforms' own examples", () => {
  it("Meta: a US number hashes as its digits with the country code (documented digest of 16505551212)", async () => {
    // developers.facebook.com Conversions API, customer information parameters, `ph`: "16505551212".
    const META_PH = "e323ec626319ca94ee8bff2e4c87cf613be6ea19919ed1364124e16807ab3176";
    expect(sha256("16505551212")).toBe(META_PH);
    for (const [raw, region] of [
      ["+1 (650) 555-1212", undefined],
      ["1 (650) 555-1212", undefined],
      ["(650)555-1212", "US"],
      ["650.555.1212", "us"],
    ] as const) {
      const out = await phoneHashes(raw, region);
      expect(out?.sha256, raw).toBe(META_PH);
      expect(out?.relay?.metaSha256, raw).toBe(META_PH);
    }
  });

  it("TikTok: E.164 with the '+' (+16505551212), hashed", async () => {
    const out = await phoneHashes("(650)555-1212", "US");
    expect(out?.relay?.tiktokSha256).toBe(sha256("+16505551212"));
    // Not "+6505551212": that would be read as Singapore's +65.
    expect(out?.relay?.tiktokSha256).not.toBe(sha256("+6505551212"));
  });

  it("the UK digest published for +44 844 412 4653 (digits with the country code)", async () => {
    const out = await phoneHashes("+44 844 412 4653");
    expect(out?.relay?.metaSha256).toBe("dc008fda46e2e64002cf2f82a4906236282d431c4f75e5b60bfe79fc48546383");
    expect(out?.relay?.tiktokSha256).toBe(sha256("+448444124653"));
  });
});

// [country, input, default region, E.164 digits]. Each country: international with "+", national in its
// own region, the trunk zero written as "(0)", the "00" international prefix (also from a region whose own
// prefix is not 00), and an extension.
const VALID: [string, string, string | undefined, string][] = [
  ["US", "+1 650 555 1212", undefined, "16505551212"],
  ["US", "(650) 555-1212", "US", "16505551212"],
  ["US", "1 (650) 555-1212", "US", "16505551212"],
  ["US", "011 1 650 555 1212", "US", "16505551212"],
  ["US", "001 650 555 1212", "DE", "16505551212"],
  ["US", "650-555-1212 ext. 123", "US", "16505551212"],
  ["US", "+1 650 555 1212 x123", undefined, "16505551212"],
  ["US", "+1 650 555 1212;ext=77", undefined, "16505551212"],
  ["US", "tel:+1-650-555-1212", undefined, "16505551212"],
  ["GB", "+44 20 7946 0958", undefined, "442079460958"],
  ["GB", "020 7946 0958", "GB", "442079460958"],
  ["GB", "+44 (0)20 7946 0958", undefined, "442079460958"],
  ["GB", "0044 20 7946 0958", "US", "442079460958"],
  ["GB", "020 7946 0958 x123", "GB", "442079460958"],
  ["DE", "+49 170 1234567", undefined, "491701234567"],
  ["DE", "0170 1234567", "DE", "491701234567"],
  ["DE", "+49 (0)170 1234567", undefined, "491701234567"],
  ["DE", "0049 170 1234567", "DE", "491701234567"],
  ["DE", "0049 170 1234567", "US", "491701234567"],
  ["DE", "0049 170 1234567", undefined, "491701234567"],
  ["DE", "+49 170 1234567 ext. 12", undefined, "491701234567"],
  ["FR", "+33 6 12 34 56 78", undefined, "33612345678"],
  ["FR", "06 12 34 56 78", "FR", "33612345678"],
  ["FR", "+33 (0)6 12 34 56 78", undefined, "33612345678"],
  ["FR", "0033 6 12 34 56 78", "GB", "33612345678"],
  ["IN", "+91 98765 43210", undefined, "919876543210"],
  ["IN", "098765 43210", "IN", "919876543210"],
  ["IN", "98765 43210", "IN", "919876543210"],
  ["IN", "0091 98765 43210", "DE", "919876543210"],
  ["BR", "+55 11 91234-5678", undefined, "5511912345678"],
  ["BR", "(11) 91234-5678", "BR", "5511912345678"],
  ["BR", "0 21 11 91234-5678", "BR", "5511912345678"], // trunk 0 and a carrier code
  ["BR", "0055 11 91234 5678", "DE", "5511912345678"],
  ["JP", "+81 90-1234-5678", undefined, "819012345678"],
  ["JP", "090-1234-5678", "JP", "819012345678"],
  ["JP", "+81 (0)90-1234-5678", undefined, "819012345678"],
  ["JP", "010 81 90 1234 5678", "JP", "819012345678"], // Japan's own international prefix
  ["AU", "+61 4 1234 5678", undefined, "61412345678"],
  ["AU", "0412 345 678", "AU", "61412345678"],
  ["AU", "+61 (0)412 345 678", undefined, "61412345678"],
  ["AU", "0011 61 412 345 678", "AU", "61412345678"], // Australia's own international prefix
  ["MX", "+52 55 1234 5678", undefined, "525512345678"],
  ["MX", "55 1234 5678", "MX", "525512345678"],
  ["MX", "0052 55 1234 5678", "DE", "525512345678"],
  ["NG", "+234 802 123 4567", undefined, "2348021234567"],
  ["NG", "0802 123 4567", "NG", "2348021234567"],
  ["NG", "00234 802 123 4567", "GB", "2348021234567"],
  ["ZA", "+27 82 123 4567", undefined, "27821234567"],
  ["ZA", "082 123 4567", "ZA", "27821234567"],
  ["ZA", "+27 (0)82 123 4567", undefined, "27821234567"],
  ["ZA", "0027 82 123 4567", "US", "27821234567"],
  // Italy keeps the leading 0 of a landline after the country code: not every zero is a trunk prefix.
  ["IT", "+39 06 1234 5678", undefined, "390612345678"],
  ["IT", "06 1234 5678", "IT", "390612345678"],
  // Digits that start with the country code, without "+" (the form asked for before): read as
  // international when the default region's reading is not a valid number.
  ["US", "16505551212", "DE", "16505551212"],
  ["US", "1(650)555-1212", undefined, "16505551212"],
];

describe("valid numbers: every form of one number has one hash, relayed to Meta and TikTok", () => {
  it.each(VALID)("%s %j (default region %s) → %s", async (_country, raw, region, digits) => {
    await expect(phoneHashes(raw, region)).resolves.toEqual(expected(digits, true));
    await expect(hashPhone(raw, region)).resolves.toBe(sha256(digits));
  });

  it("covers at least ten countries", () => {
    expect(new Set(VALID.map(([country]) => country)).size).toBeGreaterThanOrEqual(10);
  });
});

describe("numbers libphonenumber does not consider valid: stored, never relayed", () => {
  it.each([
    ["US area code 555 is not assigned", "+1 555 010 0000", undefined, "15550100000"],
    ["a German number in no assigned range", "+49 123 4567890", undefined, "491234567890"],
    ["a Brazilian mobile cannot start with 0", "+55 11 01234-5678", undefined, "5511012345678"],
    ["the UK's drama range", "+44 7700 900123", undefined, "447700900123"],
    ["too short", "+49 12", undefined, "4912"],
    ["a Mexican mobile with the old '1' (gone since 2019)", "+52 1 55 1234 5678", undefined, "5215512345678"],
    // National format and nowhere to place it: the digits as sent (extension dropped), no relay.
    ["national, no default region", "(650)555-1212", undefined, "6505551212"],
    ["national with trunk zero, no default region", "0170 1234567", undefined, "01701234567"],
    ["the same with an extension", "0170 1234567 x12", undefined, "01701234567"],
    ["an unknown region is no region", "0170 1234567", "XX", "01701234567"],
    ["Cloudflare's Tor pseudo-country is no region", "0170 1234567", "T1", "01701234567"],
    ["two digits", "12", undefined, "12"],
  ])("%s: %j (%s) → stored as %s, no relay hash", async (_label, raw, region, digits) => {
    await expect(phoneHashes(raw, region)).resolves.toEqual(expected(digits, false));
  });

  it("a number read in its default region is not reinterpreted when that reading is valid", async () => {
    // "491701234567" from a German device is a valid German national number (0491 …): libphonenumber's
    // reading, documented; a sender that means +49 170 … writes the "+".
    await expect(phoneHashes("491701234567", "DE")).resolves.toEqual(expected("49491701234567", true));
    await expect(phoneHashes("+491701234567", "DE")).resolves.toEqual(expected("491701234567", true));
  });
});

describe("pre-hashed values and empties", () => {
  const GIVEN = sha256("+16505551212");
  it.each([
    ["lower-case digest", GIVEN],
    ["upper-case digest", GIVEN.toUpperCase()],
    ["digest with surrounding whitespace", `  ${GIVEN.toUpperCase()}\n`],
  ])("%s: kept as given (lower-cased) for storage and both platforms, never hashed again", async (_l, raw) => {
    const out = await phoneHashes(raw, "US");
    expect(out).toEqual({ sha256: GIVEN, relay: { metaSha256: GIVEN, tiktokSha256: GIVEN } });
    expect(out?.sha256).not.toBe(sha256(raw.replace(/\D/g, "")));
  });

  it.each([null, undefined, "", "   ", "+-()", "call me", "＋"])("%j → null (dropped)", async (raw) => {
    await expect(phoneHashes(raw, "US")).resolves.toBeNull();
    await expect(hashPhone(raw, "US")).resolves.toBeNull();
  });
});

describe("phone regions", () => {
  it.each([
    ["US", "US"],
    ["de", "DE"],
    [" gb ", "GB"],
    ["XK", "XK"], // Kosovo: no ISO code yet, its own numbering plan
  ])("%j → %s", (code, region) => {
    expect(phoneRegion(code)).toBe(region);
  });

  it.each([
    "XX",
    "UK",
    "T1",
    "ZZ",
    "AQ",
    "USA",
    "",
    "1",
    "0049",
    "constructor",
    null,
    undefined,
  ])("%j → none", (code) => {
    expect(phoneRegion(code)).toBeUndefined();
  });

  it("a request's phoneCountry must be exactly two letters of a known numbering plan", () => {
    expect(isPhoneCountry("us")).toBe(true);
    expect(isPhoneCountry("ZA")).toBe(true);
    for (const bad of ["UK", "XX", " US", "U", "USA", "constructor", "00"]) {
      expect(isPhoneCountry(bad), bad).toBe(false);
    }
  });
});
