import { isSha256Hex, sha256Hex } from "../../shared/hash";

// Identifiers the relays hash at send time (the edge already hashed email and phone). A value that
// already is a SHA-256 digest is passed on as it is: never hashed twice.

export async function hashedExternalId(userId: string | null): Promise<string | null> {
  if (userId === null || userId.trim() === "") return null;
  const trimmed = userId.trim();
  return isSha256Hex(trimmed) ? trimmed.toLowerCase() : sha256Hex(trimmed);
}

/** Meta: lower-case ISO 3166-1 alpha-2, hashed. Cloudflare's "XX" (unknown) and "T1" (Tor) are not countries. */
export async function hashedCountry(country: string | null): Promise<string | null> {
  if (country === null || !/^[A-Za-z]{2}$/.test(country)) return null;
  const code = country.toLowerCase();
  if (code === "xx" || code === "t1") return null;
  return sha256Hex(code);
}

/** App events: no browser (the edge parsed no web User-Agent) and a mobile OS. */
export function mobilePlatform(event: {
  os: string | null;
  browser: string | null;
}): "ios" | "android" | null {
  if (event.browser !== null || event.os === null) return null;
  if (/^(ios|ipados|iphone os)$/i.test(event.os.trim())) return "ios";
  if (/^android$/i.test(event.os.trim())) return "android";
  return null;
}

/**
 * Hashes the user ids and countries of a batch once each, all at once: a batch repeats both a lot, and
 * one awaited digest after another would make hashing the slowest part of a send.
 */
export async function hashBatchIdentities(
  events: { userId: string | null; country: string | null }[],
): Promise<{
  externalId: (userId: string | null) => string | null;
  country: (c: string | null) => string | null;
}> {
  const users = new Map<string, Promise<string | null>>();
  const countries = new Map<string, Promise<string | null>>();
  for (const e of events) {
    if (e.userId !== null && !users.has(e.userId)) users.set(e.userId, hashedExternalId(e.userId));
    if (e.country !== null && !countries.has(e.country)) countries.set(e.country, hashedCountry(e.country));
  }
  const settle = async (m: Map<string, Promise<string | null>>) =>
    new Map(await Promise.all([...m].map(async ([k, v]) => [k, await v] as const)));
  const [userHashes, countryHashes] = await Promise.all([settle(users), settle(countries)]);
  return {
    externalId: (userId) => (userId === null ? null : (userHashes.get(userId) ?? null)),
    country: (c) => (c === null ? null : (countryHashes.get(c) ?? null)),
  };
}
