import type { Keyring } from "../../shared/destinations";
import { type EncryptedToken, openWithKeyring, sealWithKeyring } from "../destinations/crypto";

// Webhook signing secrets at rest: the same AES-256-GCM vault as destination tokens (the DESTINATION_KEYS
// keyring, the key id stored beside the ciphertext so a key rotation leaves old rows readable), with an AAD
// of their own binding a ciphertext to its org and endpoint: copied into another endpoint's row, or read as
// a destination token, it does not decrypt. The secret itself lives only in memory and in the one answer
// that creates it.

const AAD_VERSION = "layers-webhook-secret:v1";

export interface SecretBinding {
  orgId: string;
  endpointId: string;
}

const context = (b: SecretBinding) => `${AAD_VERSION}\n${b.orgId}\n${b.endpointId}`;

export function encryptWebhookSecret(
  keyring: Keyring,
  secret: string,
  binding: SecretBinding,
): Promise<EncryptedToken> {
  return sealWithKeyring(keyring, secret, context(binding));
}

export function decryptWebhookSecret(
  keyring: Keyring,
  sealed: EncryptedToken,
  binding: SecretBinding,
): Promise<string> {
  return openWithKeyring(keyring, sealed, context(binding), `Webhook secret of ${binding.endpointId}`);
}

/** The secret columns of a webhook_endpoints row. */
export interface EndpointSecretColumns {
  id: string;
  org_id: string;
  secret_ciphertext: string;
  secret_key_id: string;
  previous_secret_ciphertext: string | null;
  previous_secret_key_id: string | null;
  previous_secret_expires_at: Date | null;
}

/**
 * The secrets that sign a delivery at `now`, current first: the previous one too while its grace period
 * after a rotation lasts (Standard Webhooks puts one signature per secret in the header). Throws
 * TokenDecryptError when a key has left the ring.
 */
export async function signingSecrets(
  keyring: Keyring,
  row: EndpointSecretColumns,
  now: Date,
): Promise<string[]> {
  const binding = { orgId: row.org_id, endpointId: row.id };
  const current = await decryptWebhookSecret(
    keyring,
    { ciphertext: row.secret_ciphertext, keyId: row.secret_key_id },
    binding,
  );
  if (
    row.previous_secret_ciphertext === null ||
    row.previous_secret_key_id === null ||
    row.previous_secret_expires_at === null ||
    row.previous_secret_expires_at.getTime() <= now.getTime()
  ) {
    return [current];
  }
  const previous = await decryptWebhookSecret(
    keyring,
    { ciphertext: row.previous_secret_ciphertext, keyId: row.previous_secret_key_id },
    binding,
  );
  return [current, previous];
}
