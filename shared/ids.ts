const ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"; // base58: no 0/O, I/l look-alikes

function randomBase58(length: number): string {
  const bytes = crypto.getRandomValues(new Uint8Array(length));
  let out = "";
  // 256 % 58 bias is ~0.4% per character; acceptable for ids, and secrets are long enough not to care.
  for (const byte of bytes) out += ALPHABET[byte % ALPHABET.length];
  return out;
}

/** Resource ids carry their type: org_…, proj_…, sdkkey_… (Stripe-style), so a misplaced id is obvious. */
export function newId(prefix: string): string {
  return `${prefix}_${randomBase58(20)}`;
}

/** Random characters after a secret's prefix. */
const SECRET_RANDOM_LENGTH = 32;

/** A secret with a recognisable prefix; 32 base58 chars ≈ 187 bits. */
export function newSecret(prefix: string): string {
  return `${prefix}${randomBase58(SECRET_RANDOM_LENGTH)}`;
}

/**
 * Whether `value` has the shape of a secret newSecret(prefix) makes: the prefix, then exactly 32 ASCII
 * letters or digits. Base58 is widened to every letter and digit only so the fixed local-development demo
 * keys (scripts/local/seed.ts, which contain 0, O and l) pass too. Anything else cannot be a key, so the
 * Workers refuse it before any lookup.
 */
export function hasSecretShape(value: string, prefix: string): boolean {
  return (
    value.length === prefix.length + SECRET_RANDOM_LENGTH &&
    value.startsWith(prefix) &&
    /^[A-Za-z0-9]+$/.test(value.slice(prefix.length))
  );
}

/** The part of a secret we keep to let people recognise it: prefix plus 4 characters. */
export function displayPrefix(secret: string, prefixLength: number): string {
  return secret.slice(0, prefixLength + 4);
}
