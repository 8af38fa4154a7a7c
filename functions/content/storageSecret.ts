import type { Keyring } from "../../shared/destinations";
import { type EncryptedToken, openWithKeyring, sealWithKeyring } from "../destinations/crypto";

// A partner's storage secret access key at rest (storage_configs.secret_ciphertext): sealed exactly like a
// destination token — AES-256-GCM under the DESTINATION_KEYS ring, the key id stored beside it so a
// rotation can proceed — but bound by its own additional data (org and config id), so a storage
// ciphertext copied into another row, or into a destination, does not open.

const AAD_VERSION = "layers-storage-secret:v1";

export interface StorageSecretBinding {
  orgId: string;
  storageConfigId: string;
}

const aad = (b: StorageSecretBinding) => `${AAD_VERSION}\n${b.orgId}\n${b.storageConfigId}`;

export interface SealedStorageSecret extends EncryptedToken {
  /** The last four characters, so a partner recognises the key without it being shown. */
  last4: string;
}

export async function sealStorageSecret(
  keyring: Keyring,
  secret: string,
  binding: StorageSecretBinding,
): Promise<SealedStorageSecret> {
  return { ...(await sealWithKeyring(keyring, secret, aad(binding))), last4: secret.slice(-4) };
}

export function openStorageSecret(
  keyring: Keyring,
  sealed: EncryptedToken,
  binding: StorageSecretBinding,
): Promise<string> {
  return openWithKeyring(keyring, sealed, aad(binding), `Storage secret of ${binding.storageConfigId}`);
}
