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

/** A secret with a recognisable prefix; 32 base58 chars ≈ 187 bits. */
export function newSecret(prefix: string): string {
  return `${prefix}${randomBase58(32)}`;
}

/** The part of a secret we keep to let people recognise it: prefix plus 4 characters. */
export function displayPrefix(secret: string, prefixLength: number): string {
  return secret.slice(0, prefixLength + 4);
}
