import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import {
  decryptToken,
  encryptToken,
  KeyringError,
  parseKeyring,
  reencryptToken,
  TokenDecryptError,
} from "../../functions/destinations/crypto";
import type { Keyring } from "../../shared/destinations";

const k1 = randomBytes(32).toString("base64");
const k2 = randomBytes(32).toString("base64");
const ring = (current: string, keys: Record<string, string>): Keyring =>
  parseKeyring({ DESTINATION_KEYS: JSON.stringify(keys), DESTINATION_KEY_ID: current });
const here = { orgId: "org_a", projectId: "proj_a", kind: "meta" as const };
const TOKEN = "EAABsbCS1iHgBAKZCZB0rTdqjZCwZA9example";

describe("parseKeyring", () => {
  it("reads every key and the current id", () => {
    expect(ring("k2", { k1, k2 })).toEqual({ currentKeyId: "k2", keys: { k1, k2 } });
  });

  it.each([
    ["missing secrets", {}, /must both be set/],
    ["not JSON", { DESTINATION_KEYS: "k1=abc", DESTINATION_KEY_ID: "k1" }, /not JSON/],
    ["an array", { DESTINATION_KEYS: "[]", DESTINATION_KEY_ID: "k1" }, /JSON object/],
    [
      "a 16-byte key",
      {
        DESTINATION_KEYS: JSON.stringify({ k1: randomBytes(16).toString("base64") }),
        DESTINATION_KEY_ID: "k1",
      },
      /exactly 32 bytes/,
    ],
    [
      "a key that is not base64",
      { DESTINATION_KEYS: JSON.stringify({ k1: "!!!" }), DESTINATION_KEY_ID: "k1" },
      /exactly 32 bytes/,
    ],
    [
      "a bad key id",
      { DESTINATION_KEYS: JSON.stringify({ "k 1": k1 }), DESTINATION_KEY_ID: "k 1" },
      /key id/,
    ],
    [
      "a current id not in the ring",
      { DESTINATION_KEYS: JSON.stringify({ k1 }), DESTINATION_KEY_ID: "k2" },
      /not in DESTINATION_KEYS/,
    ],
  ])("refuses %s, without echoing key material", (_label, env, message) => {
    let thrown: unknown;
    try {
      parseKeyring(env);
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(KeyringError);
    expect((thrown as Error).message).toMatch(message);
    expect((thrown as Error).message).not.toContain(k1);
  });
});

describe("encryptToken / decryptToken", () => {
  it("round-trips, and the stored form holds neither the token nor the key", async () => {
    const keyring = ring("k1", { k1 });
    const sealed = await encryptToken(keyring, TOKEN, here);
    expect(sealed.keyId).toBe("k1");
    expect(sealed.ciphertext).not.toContain(TOKEN);
    expect(sealed.ciphertext).not.toContain(k1);
    // 12-byte IV + ciphertext (as long as the token) + 16-byte tag.
    expect(Buffer.from(sealed.ciphertext, "base64").length).toBe(12 + TOKEN.length + 16);
    await expect(decryptToken(keyring, sealed, here)).resolves.toBe(TOKEN);
  });

  it("uses a fresh IV each time: the same token never gives the same ciphertext", async () => {
    const keyring = ring("k1", { k1 });
    const a = await encryptToken(keyring, TOKEN, here);
    const b = await encryptToken(keyring, TOKEN, here);
    expect(a.ciphertext).not.toBe(b.ciphertext);
    expect(Buffer.from(a.ciphertext, "base64").subarray(0, 12)).not.toEqual(
      Buffer.from(b.ciphertext, "base64").subarray(0, 12),
    );
  });

  it.each([
    ["another org", { ...here, orgId: "org_b" }],
    ["another project", { ...here, projectId: "proj_b" }],
    ["another kind", { ...here, kind: "tiktok" as const }],
  ])("a ciphertext moved to %s does not decrypt (AAD)", async (_label, elsewhere) => {
    const keyring = ring("k1", { k1 });
    const sealed = await encryptToken(keyring, TOKEN, here);
    await expect(decryptToken(keyring, sealed, elsewhere)).rejects.toBeInstanceOf(TokenDecryptError);
  });

  it("a flipped bit is detected (GCM tag), and the error names no token", async () => {
    const keyring = ring("k1", { k1 });
    const sealed = await encryptToken(keyring, TOKEN, here);
    const bytes = Buffer.from(sealed.ciphertext, "base64");
    bytes[20] = (bytes[20] ?? 0) ^ 1;
    const error = await decryptToken(
      keyring,
      { ...sealed, ciphertext: bytes.toString("base64") },
      here,
    ).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TokenDecryptError);
    expect(String(error)).not.toContain(TOKEN);
  });

  it("the wrong key under the same id does not decrypt", async () => {
    const sealed = await encryptToken(ring("k1", { k1 }), TOKEN, here);
    await expect(decryptToken(ring("k1", { k1: k2 }), sealed, here)).rejects.toBeInstanceOf(
      TokenDecryptError,
    );
  });
});

describe("rotation", () => {
  it("after the current key changes, old ciphertexts still decrypt and re-encryption moves them", async () => {
    const before = ring("k1", { k1 });
    const sealed = await encryptToken(before, TOKEN, here);
    const during = ring("k2", { k1, k2 });
    await expect(decryptToken(during, sealed, here)).resolves.toBe(TOKEN);
    const moved = await reencryptToken(during, sealed, here);
    expect(moved?.keyId).toBe("k2");
    // Once moved, the old key can leave the ring.
    const after = ring("k2", { k2 });
    await expect(decryptToken(after, moved!, here)).resolves.toBe(TOKEN);
    await expect(decryptToken(after, sealed, here)).rejects.toThrow(/not in the keyring/);
  });

  it("a ciphertext already under the current key is left alone", async () => {
    const keyring = ring("k1", { k1 });
    const sealed = await encryptToken(keyring, TOKEN, here);
    await expect(reencryptToken(keyring, sealed, here)).resolves.toBeNull();
  });
});

describe("key ids named like Object.prototype members", () => {
  it.each([
    "constructor",
    "toString",
    "__proto__",
    "hasOwnProperty",
    "valueOf",
  ])("a current id %s that is not in the ring is refused like any other", (id) => {
    expect(() => parseKeyring({ DESTINATION_KEYS: JSON.stringify({ k1 }), DESTINATION_KEY_ID: id })).toThrow(
      /not in DESTINATION_KEYS/,
    );
  });

  it("a ring whose key id is __proto__ keeps it as an ordinary key", async () => {
    const keyring = parseKeyring({
      DESTINATION_KEYS: `{"__proto__":"${k1}"}`,
      DESTINATION_KEY_ID: "__proto__",
    });
    expect(Object.keys(keyring.keys)).toEqual(["__proto__"]);
    const sealed = await encryptToken(keyring, TOKEN, here);
    await expect(decryptToken(keyring, sealed, here)).resolves.toBe(TOKEN);
  });

  it.each([
    "toString",
    "constructor",
  ])("a stored key id %s is not in the ring: a TokenDecryptError", async (id) => {
    const keyring = ring("k1", { k1 });
    const sealed = await encryptToken(keyring, TOKEN, here);
    await expect(decryptToken(keyring, { ...sealed, keyId: id }, here)).rejects.toThrow(/not in the keyring/);
  });
});
