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
