import type { DestinationKind, Keyring } from "../../shared/destinations";

// Destination access tokens at rest: AES-256-GCM (WebCrypto, the same in workerd and Node) under a key from
// the Worker secret DESTINATION_KEYS, chosen by DESTINATION_KEY_ID. Every ciphertext carries the id of the
// key that wrote it (stored beside it), so old rows stay readable while a rotation is under way.
//
// Stored form: base64 of (12-byte random IV ‖ ciphertext ‖ 16-byte tag). The additional authenticated data
// binds a ciphertext to its org, project and kind: a ciphertext copied into another row does not decrypt.

const IV_BYTES = 12;
const KEY_BYTES = 32;
const KEY_ID = /^[A-Za-z0-9_.-]{1,64}$/;
const AAD_VERSION = "layers-destination-token:v1";

/** Where a ciphertext belongs; part of the AAD, so it must be the row's own values. */
export interface TokenBinding {
  orgId: string;
  projectId: string;
  kind: DestinationKind;
}

export interface EncryptedToken {
  ciphertext: string;
  keyId: string;
}

/** Bad DESTINATION_KEYS / DESTINATION_KEY_ID: a deployment error, reported without the key material. */
export class KeyringError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "KeyringError";
  }
}

/** A ciphertext that cannot be read: its key was removed from the ring, or it was altered or moved. */
export class TokenDecryptError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "TokenDecryptError";
  }
}

function fromBase64(value: string): Uint8Array {
  const binary = atob(value);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

function toBase64(bytes: Uint8Array): string {
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary);
}

/**
 * Reads the keyring from the Worker secrets. DESTINATION_KEYS is a JSON object of key id → base64 of 32
 * random bytes (`openssl rand -base64 32`); DESTINATION_KEY_ID names the key new writes use and must be
 * in the ring. Throws KeyringError (never echoing key material) on anything else.
 */
export function parseKeyring(env: {
  DESTINATION_KEYS?: string | undefined;
  DESTINATION_KEY_ID?: string | undefined;
}): Keyring {
  if (!env.DESTINATION_KEYS || !env.DESTINATION_KEY_ID) {
    throw new KeyringError("DESTINATION_KEYS and DESTINATION_KEY_ID must both be set.");
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(env.DESTINATION_KEYS);
  } catch {
    throw new KeyringError('DESTINATION_KEYS is not JSON (expected {"keyId": "base64 of 32 bytes"}).');
  }
  if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) {
    throw new KeyringError("DESTINATION_KEYS must be a JSON object of key id → base64 key.");
  }
  const entries = Object.entries(parsed);
  for (const [id, value] of entries) {
    if (!KEY_ID.test(id))
      throw new KeyringError(`DESTINATION_KEYS: key id "${id.slice(0, 64)}" must match ${KEY_ID}.`);
    let length = -1;
    try {
      length = typeof value === "string" ? fromBase64(value).length : -1;
    } catch {
      length = -1;
    }
    if (length !== KEY_BYTES) {
      throw new KeyringError(`DESTINATION_KEYS: key "${id}" must be base64 of exactly ${KEY_BYTES} bytes.`);
    }
  }
  // fromEntries keeps every id an own key ("__proto__" included, which `keys[id] = …` would not store),
  // and own keys are the only ones looked up: `in` would find "constructor" or "toString" on any object.
  const keys = Object.fromEntries(entries) as Record<string, string>;
  if (!Object.hasOwn(keys, env.DESTINATION_KEY_ID)) {
    throw new KeyringError(
      `DESTINATION_KEY_ID "${env.DESTINATION_KEY_ID.slice(0, 64)}" is not in DESTINATION_KEYS.`,
    );
  }
  return { currentKeyId: env.DESTINATION_KEY_ID, keys };
}

// Imported keys by their base64 material: importKey is asynchronous and the same few keys serve every request.
const imported = new Map<string, Promise<CryptoKey>>();

function cryptoKey(keyring: Keyring, keyId: string): Promise<CryptoKey> {
  // keyId comes from a stored row: an inherited member ("toString") is not a key of the ring.
  const material = Object.hasOwn(keyring.keys, keyId) ? keyring.keys[keyId] : undefined;
  if (material === undefined) {
    return Promise.reject(
      new TokenDecryptError(`Destination key "${keyId}" is not in the keyring (removed too early?).`),
    );
  }
  let key = imported.get(material);
  if (!key) {
    key = crypto.subtle.importKey("raw", fromBase64(material), { name: "AES-GCM" }, false, [
      "encrypt",
      "decrypt",
    ]);
    imported.set(material, key);
  }
  return key;
}

function aad(binding: TokenBinding): string {
  return `${AAD_VERSION}\n${binding.orgId}\n${binding.projectId}\n${binding.kind}`;
}

/**
 * Encrypts under the ring's current key with a fresh random IV, bound to `context` (the AAD: where the
 * ciphertext belongs). The primitive behind destination tokens and webhook signing secrets
 * (functions/webhooks/secrets.ts), which differ only in their context.
 */
export async function sealWithKeyring(
  keyring: Keyring,
  plaintext: string,
  context: string,
): Promise<EncryptedToken> {
  const keyId = keyring.currentKeyId;
  const iv = crypto.getRandomValues(new Uint8Array(IV_BYTES));
  const sealed = await crypto.subtle.encrypt(
    { name: "AES-GCM", iv, additionalData: new TextEncoder().encode(context) },
    await cryptoKey(keyring, keyId),
    new TextEncoder().encode(plaintext),
  );
  const out = new Uint8Array(IV_BYTES + sealed.byteLength);
  out.set(iv, 0);
  out.set(new Uint8Array(sealed), IV_BYTES);
  return { ciphertext: toBase64(out), keyId };
}

/**
 * Decrypts with the key the ciphertext names, checking it belongs to `context`. Throws TokenDecryptError
 * (`what` names the row, never the secret) when it cannot.
 */
export async function openWithKeyring(
  keyring: Keyring,
  token: EncryptedToken,
  context: string,
  what: string,
): Promise<string> {
  const key = await cryptoKey(keyring, token.keyId);
  let bytes: Uint8Array;
  try {
    bytes = fromBase64(token.ciphertext);
  } catch {
    throw new TokenDecryptError(`${what}: ciphertext is not base64.`);
  }
  if (bytes.length <= IV_BYTES + 16) throw new TokenDecryptError(`${what}: ciphertext is truncated.`);
  try {
    const plain = await crypto.subtle.decrypt(
      { name: "AES-GCM", iv: bytes.subarray(0, IV_BYTES), additionalData: new TextEncoder().encode(context) },
      key,
      bytes.subarray(IV_BYTES),
    );
    return new TextDecoder().decode(plain);
  } catch {
    throw new TokenDecryptError(`${what} failed authentication (altered, or not this row's).`);
  }
}

/** Encrypts a destination token under the ring's current key with a fresh random IV. */
export function encryptToken(
  keyring: Keyring,
  plaintext: string,
  binding: TokenBinding,
): Promise<EncryptedToken> {
  return sealWithKeyring(keyring, plaintext, aad(binding));
}

/** Decrypts with the key the ciphertext names. Throws TokenDecryptError when it cannot (never the token). */
export function decryptToken(
  keyring: Keyring,
  token: EncryptedToken,
  binding: TokenBinding,
): Promise<string> {
  return openWithKeyring(
    keyring,
    token,
    aad(binding),
    `Destination token for ${binding.projectId}/${binding.kind}`,
  );
}

/**
 * Rotation step for one ciphertext: decrypts with its own key and encrypts under the current one. Returns
 * null when it already uses the current key (nothing to do).
 */
export async function reencryptToken(
  keyring: Keyring,
  token: EncryptedToken,
  binding: TokenBinding,
): Promise<EncryptedToken | null> {
  if (token.keyId === keyring.currentKeyId) return null;
  return encryptToken(keyring, await decryptToken(keyring, token, binding), binding);
}
