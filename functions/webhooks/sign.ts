// Standard Webhooks signing (https://www.standardwebhooks.com, spec "Signature scheme"): the receiver
// verifies with any Standard Webhooks library. WebCrypto only, so the same code runs in workerd and Node.
//
//   webhook-id         the message id, stable across retries (the receiver's dedupe key)
//   webhook-timestamp  integer seconds since the epoch, of this attempt
//   webhook-signature  "v1,<base64 HMAC-SHA256(secret bytes, `${id}.${timestamp}.${body}`)>", one per
//                      active secret, space-separated (during a rotation's grace both secrets sign)

export const SECRET_PREFIX = "whsec_";
/** 24 random bytes, as Svix issues: 192 bits of key, well above HMAC-SHA256's needs. */
const SECRET_BYTES = 24;
/** A longer or shorter secret is refused (the spec allows 24–64 bytes). */
const MIN_SECRET_BYTES = 24;
const MAX_SECRET_BYTES = 64;

const encoder = new TextEncoder();

function toBase64(bytes: Uint8Array): string {
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary);
}

function fromBase64(value: string): Uint8Array | null {
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(value)) return null;
  try {
    const binary = atob(value);
    const bytes = new Uint8Array(binary.length);
    for (let i = 0; i < binary.length; i += 1) bytes[i] = binary.charCodeAt(i);
    return bytes;
  } catch {
    return null;
  }
}

/** A new signing secret, `whsec_` + base64 of 24 random bytes (shown once, stored encrypted). */
export function generateWebhookSecret(): string {
  return SECRET_PREFIX + toBase64(crypto.getRandomValues(new Uint8Array(SECRET_BYTES)));
}

/** The key bytes of a `whsec_…` secret, or null when it is not one. */
export function secretKeyBytes(secret: string): Uint8Array | null {
  if (!secret.startsWith(SECRET_PREFIX)) return null;
  const bytes = fromBase64(secret.slice(SECRET_PREFIX.length));
  if (!bytes || bytes.length < MIN_SECRET_BYTES || bytes.length > MAX_SECRET_BYTES) return null;
  return bytes;
}

export function isWebhookSecret(secret: string): boolean {
  return secretKeyBytes(secret) !== null;
}

/** Computes one `v1,…` signature. Throws on a malformed secret: that is a bug upstream, not input. */
export async function signatureV1(
  secret: string,
  messageId: string,
  timestampSeconds: number,
  body: string,
): Promise<string> {
  const keyBytes = secretKeyBytes(secret);
  if (!keyBytes) throw new Error("webhook secret is not a whsec_ secret");
  const key = await crypto.subtle.importKey("raw", keyBytes, { name: "HMAC", hash: "SHA-256" }, false, [
    "sign",
  ]);
  const mac = await crypto.subtle.sign(
    "HMAC",
    key,
    encoder.encode(`${messageId}.${timestampSeconds}.${body}`),
  );
  return `v1,${toBase64(new Uint8Array(mac))}`;
}

export interface SignInput {
  /** The active secrets: the current one first, then the previous one while its grace lasts. */
  secrets: string[];
  messageId: string;
  timestampSeconds: number;
  body: string;
}

export interface WebhookHeaders {
  "webhook-id": string;
  "webhook-timestamp": string;
  "webhook-signature": string;
}

/** The three Standard Webhooks headers for one attempt. */
export async function webhookHeaders(input: SignInput): Promise<WebhookHeaders> {
  if (input.secrets.length === 0) throw new Error("a webhook needs at least one signing secret");
  const signatures = await Promise.all(
    input.secrets.map((secret) => signatureV1(secret, input.messageId, input.timestampSeconds, input.body)),
  );
  return {
    "webhook-id": input.messageId,
    "webhook-timestamp": String(input.timestampSeconds),
    "webhook-signature": signatures.join(" "),
  };
}
