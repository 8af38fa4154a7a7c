import { isSha256Hex, sha256Hex } from "./hash";

// The one normalization of personal identifiers, shared by ingest and (later) the partner API's lookups,
// so that a partner re-hashing with the documented rules matches what we stored.

/** Email: trim + lower-case, then SHA-256. A value that already is a SHA-256 digest is kept (lower-cased). */
export async function hashEmail(raw: string | null | undefined): Promise<string | null> {
  if (raw == null) return null;
  const trimmed = raw.trim();
  if (isSha256Hex(trimmed)) return trimmed.toLowerCase();
  const normalized = trimmed.toLowerCase();
  return normalized === "" ? null : sha256Hex(normalized);
}

/** Phone: digits only (the country code stays, symbols and spaces go), then SHA-256. Pre-hashed values are kept. */
export async function hashPhone(raw: string | null | undefined): Promise<string | null> {
  if (raw == null) return null;
  const trimmed = raw.trim();
  if (isSha256Hex(trimmed)) return trimmed.toLowerCase();
  const digits = trimmed.replace(/\D/g, "");
  return digits === "" ? null : sha256Hex(digits);
}

/**
 * Phone hashes for the conversion relays, computed at the edge while the raw number is still in hand. They
 * ride in the queue message to the relay only and are never stored (the consumer reads named columns).
 * The platforms disagree on the input to the hash:
 *  - Meta (`user_data.ph`): digits only, country code included, no leading zeros ("+49 170 1234567" → "491701234567").
 *  - TikTok (`user.phone`): E.164 with the "+" ("+491701234567").
 */
export interface RelayPhoneHashes {
  metaSha256: string;
  tiktokSha256: string;
}

/** E.164: a country code and subscriber number of at most 15 digits; below 7 no real number fits. */
const E164_DIGITS = { min: 7, max: 15 };

/**
 * The number as E.164 digits (no "+"), or null when the country code is not knowable. Written as "+…" or
 * "00…" (the international prefix) the country code is explicit. A single leading "0" is a national trunk
 * prefix ("0170 1234567"): the country is unknown and guessing would send a wrong hash, so there is none.
 * Otherwise the digits are taken as including the country code, which is what the ingest API asks for
 * ("country code included"; the stored `phone_sha256` assumes the same).
 */
export function phoneE164Digits(raw: string): string | null {
  const trimmed = raw.trim();
  let digits = trimmed.replace(/\D/g, "");
  if (trimmed.startsWith("+")) digits = digits.replace(/^0+/, "");
  else if (digits.startsWith("00")) digits = digits.slice(2).replace(/^0+/, "");
  else if (digits.startsWith("0")) return null;
  if (digits.length < E164_DIGITS.min || digits.length > E164_DIGITS.max) return null;
  return digits;
}

/**
 * Both relay hashes of one phone, or undefined when there is no usable number. A value the SDK already
 * hashed is passed on as given (lower-cased) for both platforms: it is never hashed again, and which rule
 * the sender followed cannot be known.
 */
export async function relayPhoneHashes(
  raw: string | null | undefined,
): Promise<RelayPhoneHashes | undefined> {
  if (raw == null) return undefined;
  const trimmed = raw.trim();
  if (isSha256Hex(trimmed)) {
    const given = trimmed.toLowerCase();
    return { metaSha256: given, tiktokSha256: given };
  }
  const digits = phoneE164Digits(trimmed);
  if (digits === null) return undefined;
  const [metaSha256, tiktokSha256] = await Promise.all([sha256Hex(digits), sha256Hex(`+${digits}`)]);
  return { metaSha256, tiktokSha256 };
}
