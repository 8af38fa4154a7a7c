import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { hashEmail, hashPhone } from "../../shared/pii";

/** Expected digests are computed here with node:crypto, never with the code under test. */
const sha256 = (normalized: string) => createHash("sha256").update(normalized, "utf8").digest("hex");

const PRE_HASHED = sha256("someone@example.com");

describe("hashEmail", () => {
  it.each([
    ["already normalized", "alice@example.com", "alice@example.com"],
    ["upper case and surrounding spaces", "  Alice@Example.COM ", "alice@example.com"],
    ["tabs and newlines around it", "\tBob@Example.org\n", "bob@example.org"],
    ["plus addressing is kept", "Carol+News@Example.com", "carol+news@example.com"],
    ["dots in the local part are kept", "first.last@example.com", "first.last@example.com"],
    ["non-ASCII letters are lower-cased too", "ÉLODIE@Exemple.FR", "élodie@exemple.fr"],
    // Meta's documented vector for `em` (Conversions API customer information parameters).
    ["Meta's documented example", "John_Smith@gmail.com", "john_smith@gmail.com"],
  ])("%s: %j hashes as %j", async (_label, raw, normalized) => {
    await expect(hashEmail(raw)).resolves.toBe(sha256(normalized));
  });

  it("matches the digest Meta publishes for John_Smith@gmail.com", async () => {
    await expect(hashEmail("John_Smith@gmail.com")).resolves.toBe(
      "62a14e44f765419d10fea99367361a727c12365e2520f32218d505ed9aa0f62f",
    );
  });

  it.each([
    ["lower-case digest", PRE_HASHED, PRE_HASHED],
    ["upper-case digest is lower-cased, not re-hashed", PRE_HASHED.toUpperCase(), PRE_HASHED],
    ["digest with surrounding spaces", `  ${PRE_HASHED.toUpperCase()}  `, PRE_HASHED],
  ])("pre-hashed, %s", async (_label, raw, expected) => {
    const out = await hashEmail(raw);
    expect(out).toBe(expected);
    expect(out).not.toBe(sha256(raw.trim().toLowerCase()));
  });

  it("a 63- or 65-character hex string is not taken for a digest", async () => {
    const short = PRE_HASHED.slice(0, 63);
    const long = `${PRE_HASHED}a`;
    await expect(hashEmail(short)).resolves.toBe(sha256(short));
    await expect(hashEmail(long)).resolves.toBe(sha256(long));
  });

  it.each([
    ["empty string", ""],
    ["only spaces", "   "],
    ["only whitespace of several kinds", " \t\n "],
    ["null", null],
    ["undefined", undefined],
  ])("%s → null (dropped, not hashed)", async (_label, raw) => {
    await expect(hashEmail(raw)).resolves.toBeNull();
  });

  it("always yields 64 lower-case hex characters", async () => {
    for (const raw of ["A@B.CO", "  x@y.z ", PRE_HASHED.toUpperCase()]) {
      expect(await hashEmail(raw)).toMatch(/^[0-9a-f]{64}$/);
    }
  });
});

describe("hashPhone", () => {
  it.each([
    ["digits only", "15550100000", "15550100000"],
    ["US number with +, spaces, parentheses and a dash", "+1 (555) 010-0000", "15550100000"],
    ["German mobile with country code", "+49 170 1234567", "491701234567"],
    ["dots as separators", "+33.6.12.34.56.78", "33612345678"],
    ["surrounding whitespace", "  +44 20 7946 0958\n", "442079460958"],
    ["letters are removed", "tel: +1-555-010-0000 ext", "15550100000"],
    // One number, one hash: the E.164 digits, so the 00 international prefix is not part of it
    // (shared/phone.ts; the full table of forms and countries is in phone.test.ts).
    ["UK number written with the 00 international prefix", "0044-20-7946-0958", "442079460958"],
    ["Meta's documented example (country code included)", "1 (650) 555-1212", "16505551212"],
  ])("%s: %j hashes as %j", async (_label, raw, normalized) => {
    await expect(hashPhone(raw)).resolves.toBe(sha256(normalized));
  });

  it("+44… and 0044… are one number, one hash", async () => {
    expect(await hashPhone("+44 20 7946 0958")).toBe(sha256("442079460958"));
    expect(await hashPhone("0044 20 7946 0958")).toBe(sha256("442079460958"));
  });

  it.each([
    ["lower-case digest", PRE_HASHED, PRE_HASHED],
    ["upper-case digest is lower-cased, not re-hashed", PRE_HASHED.toUpperCase(), PRE_HASHED],
    ["digest with surrounding spaces", ` ${PRE_HASHED.toUpperCase()} `, PRE_HASHED],
  ])("pre-hashed, %s", async (_label, raw, expected) => {
    const out = await hashPhone(raw);
    expect(out).toBe(expected);
    // Digits-only of a digest would be a different, wrong value: prove we did not take that path.
    expect(out).not.toBe(sha256(raw.replace(/\D/g, "")));
  });

  it.each([
    ["empty string", ""],
    ["only spaces", "   "],
    ["symbols but no digits", "+-()"],
    ["letters only", "unknown"],
    ["null", null],
    ["undefined", undefined],
  ])("%s → null (dropped, not hashed)", async (_label, raw) => {
    await expect(hashPhone(raw)).resolves.toBeNull();
  });
});
