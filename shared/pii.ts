import { isSha256Hex, sha256Hex } from "./hash";
import { readPhone } from "./phone";

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

/**
 * One phone, hashed for storage and for the relays at once (parsed once). The canonical digits are the
 * number in international E.164 form without the "+" (shared/phone.ts readPhone), so one number has one
 * hash however it was written ("+49 170 …", "0049 170 …", "0170 …" from a German device):
 *  - `sha256` (stored as phone_sha256, matched by lookups and deletions, and Meta's `ph`): SHA-256 of
 *    those digits; of the digits as sent when the number cannot be placed at all.
 *  - `relay`: only for a number libphonenumber considers valid. Meta (`user_data.ph`) hashes the digits
 *    with the country code ("16505551212"), TikTok (`user.phone`) E.164 with the "+" ("+16505551212").
 * A value that already is a SHA-256 digest is kept as given (lower-cased) for all three: it is never hashed
 * again, and which rule the sender followed cannot be known. Null when there is no digit.
 */
export interface PhoneHashes {
  sha256: string;
  relay: RelayPhoneHashes | undefined;
}

/** Relay hashes ride in the queue message to the relay only and are never stored. */
export interface RelayPhoneHashes {
  metaSha256: string;
  tiktokSha256: string;
}

/** `defaultRegion`: where a number written without its country code is placed (ISO 3166-1 alpha-2). */
export async function phoneHashes(
  raw: string | null | undefined,
  defaultRegion?: string | null,
): Promise<PhoneHashes | null> {
  if (raw == null) return null;
  const trimmed = raw.trim();
  if (isSha256Hex(trimmed)) {
    const given = trimmed.toLowerCase();
    return { sha256: given, relay: { metaSha256: given, tiktokSha256: given } };
  }
  const phone = readPhone(trimmed, defaultRegion);
  if (phone === null) return null;
  const sha256 = await sha256Hex(phone.digits);
  if (!phone.valid) return { sha256, relay: undefined };
  return { sha256, relay: { metaSha256: sha256, tiktokSha256: await sha256Hex(`+${phone.digits}`) } };
}

/** The stored, looked-up and deleted phone hash (see phoneHashes). */
export async function hashPhone(
  raw: string | null | undefined,
  defaultRegion?: string | null,
): Promise<string | null> {
  return (await phoneHashes(raw, defaultRegion))?.sha256 ?? null;
}
