// The contract between the partner API (which stores destinations) and the relay (which sends to them).
// Tokens here are decrypted: this shape only ever lives in a Worker's memory, never in a response or a log.

export const DESTINATION_KINDS = ["meta", "tiktok", "apple-search-ads"] as const;
export type DestinationKind = (typeof DESTINATION_KINDS)[number];

/** failing: the last batch went to the dead-letter queue after max attempts; a later success clears it. */
export type DestinationStatus = "active" | "failing";

interface DestinationBase {
  orgId: string;
  projectId: string;
  /** Off: nothing is relayed to this destination (the partner's switch). */
  enabled: boolean;
  status: DestinationStatus;
}

export interface MetaDestination extends DestinationBase {
  kind: "meta";
  datasetId: string;
  accessToken: string;
  testEventCode: string | null;
  /** The partner's opt-in to send IDFA/GAID as madid (ads consent is still required per event). */
  sendDeviceIds: boolean;
}

export interface TikTokDestination extends DestinationBase {
  kind: "tiktok";
  pixelCode: string;
  accessToken: string;
  testEventCode: string | null;
}

export interface AppleSearchAdsDestination extends DestinationBase {
  kind: "apple-search-ads";
}

export type Destination = MetaDestination | TikTokDestination | AppleSearchAdsDestination;

/**
 * Keys for the AES-256-GCM encryption of tokens at rest: every key by id (so old ciphertexts stay
 * readable after a rotation) and the id new writes use. From the Worker secrets DESTINATION_KEYS
 * (JSON object: key id → base64 of 32 bytes) and DESTINATION_KEY_ID.
 */
export interface Keyring {
  currentKeyId: string;
  keys: Record<string, string>;
}
