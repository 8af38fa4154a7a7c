import { describe, expect, it } from "vitest";
import { DEMO } from "../../scripts/local/seed";
import { displayPrefix, hasSecretShape, newId, newSecret } from "../../shared/ids";

// Bitcoin's base58: no 0/O and no I/l, so an id read aloud or retyped cannot be misread.
const BASE58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
const SDK_KEY_PREFIX = "lp_pk_";

describe("newId", () => {
  // The character set itself is pinned once, deterministically, in the alphabet test below.
  it.each(["org", "proj", "sdkkey", "req"])("%s ids are prefix_ + 20 alphanumeric characters", (prefix) => {
    expect(newId(prefix)).toMatch(new RegExp(`^${prefix}_[0-9A-Za-z]{20}$`));
  });

  it("ids use the same alphabet as secrets", () => {
    const ids = new Set(Array.from({ length: 2_000 }, () => newId("x").slice(2).split("")).flat());
    const secrets = new Set(Array.from({ length: 2_000 }, () => newSecret("").split("")).flat());
    expect([...ids].sort()).toEqual([...secrets].sort());
  });

  it("10,000 ids are all different", () => {
    const ids = new Set(Array.from({ length: 10_000 }, () => newId("evt")));
    expect(ids.size).toBe(10_000);
  });
});

describe("newSecret", () => {
  it("is the prefix followed by 32 alphanumeric characters", () => {
    const secret = newSecret(SDK_KEY_PREFIX);
    expect(secret).toMatch(new RegExp(`^${SDK_KEY_PREFIX}[0-9A-Za-z]{32}$`));
  });

  it("10,000 secrets are all different", () => {
    const secrets = new Set(Array.from({ length: 10_000 }, () => newSecret(SDK_KEY_PREFIX)));
    expect(secrets.size).toBe(10_000);
  });

  it("uses exactly the base58 alphabet: every character appears, no look-alike ever does", () => {
    const seen = new Set(Array.from({ length: 2_000 }, () => newSecret("").split("")).flat());
    expect([...seen].sort().join("")).toBe([...BASE58].sort().join(""));
    for (const lookAlike of ["0", "O", "I", "l"]) expect(seen.has(lookAlike)).toBe(false);
  });
});

describe("displayPrefix", () => {
  it("keeps the prefix and 4 characters of the secret, and no more", () => {
    const secret = newSecret(SDK_KEY_PREFIX);
    const shown = displayPrefix(secret, SDK_KEY_PREFIX.length);
    expect(shown).toBe(secret.slice(0, SDK_KEY_PREFIX.length + 4));
    expect(shown).toHaveLength(SDK_KEY_PREFIX.length + 4);
    expect(shown.startsWith(SDK_KEY_PREFIX)).toBe(true);
  });

  it.each([
    ["lp_pk_AbCdEfGhJk", 6, "lp_pk_AbCd"],
    ["lp_live_Zx9Yw8Vu", 8, "lp_live_Zx9Y"],
  ])("%s with a %i-character prefix → %s", (secret, prefixLength, expected) => {
    expect(displayPrefix(secret, prefixLength)).toBe(expected);
  });
});

describe("hasSecretShape", () => {
  it("accepts every secret newSecret makes, for each prefix", () => {
    for (const prefix of [SDK_KEY_PREFIX, "lp_live_", "lp_test_"]) {
      for (let i = 0; i < 200; i++) expect(hasSecretShape(newSecret(prefix), prefix)).toBe(true);
    }
  });

  it("accepts the local demo keys (their 0, O and l are why the shape is letters and digits, not base58)", () => {
    expect(hasSecretShape(DEMO.sdkKey, SDK_KEY_PREFIX)).toBe(true);
    expect(hasSecretShape(DEMO.apiKey, "lp_test_")).toBe(true);
  });

  it.each([
    ["one character short", `${SDK_KEY_PREFIX}${"A".repeat(31)}`],
    ["one character long", `${SDK_KEY_PREFIX}${"A".repeat(33)}`],
    ["an underscore", `${SDK_KEY_PREFIX}${"A".repeat(31)}_`],
    ["a hyphen", `${SDK_KEY_PREFIX}-${"A".repeat(31)}`],
    ["a non-ASCII letter", `${SDK_KEY_PREFIX}${"A".repeat(31)}é`],
    ["a space", `${SDK_KEY_PREFIX}${"A".repeat(31)} `],
    ["another prefix", `lp_live_${"A".repeat(32)}`],
    ["no prefix", "A".repeat(38)],
    ["empty", ""],
  ])("refuses %s", (_label, value) => {
    expect(hasSecretShape(value, SDK_KEY_PREFIX)).toBe(false);
  });
});
