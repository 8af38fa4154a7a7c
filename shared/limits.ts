// Every ingest limit in one place; the README's limits table is written from these.
export const INGEST_LIMITS = {
  maxBodyBytes: 500 * 1024,
  maxEventBytes: 32 * 1024,
  maxEventsPerRequest: 500,
  maxPropertyDepth: 5,
  maxPropertyKeys: 200,
  maxPropertyKeyLength: 128,
  maxPropertyStringLength: 8 * 1024,
  maxEventIdLength: 128,
  maxNameLength: 128,
  maxUserIdLength: 256,
  maxAnonymousIdLength: 256,
  maxAppIdLength: 128,
  maxEmailLength: 320,
  maxPhoneLength: 80, // room for a pre-hashed value with stray whitespace
  maxDeviceFieldLength: 64,
  // Apple's AdServices attribution token (AAAttribution.attributionToken()) is about 1–2 KB of base64.
  maxAdServicesTokenLength: 4096,
  // The User-Agent header: real ones are < 512 characters; longer input is cut to this, never trusted whole.
  maxUserAgentLength: 512,
  // `pageUrl`, as sent and after its query and fragment are removed (the common browser URL limit).
  maxPageUrlLength: 2048,
} as const;

/** Cloudflare Queues: one message ≤ 128 KB; one sendBatch ≤ 100 messages and ≤ 256 KB in all. */
export const QUEUE_LIMITS = {
  maxMessageBytes: 120 * 1024, // headroom under 128 KB for the envelope and encoding
  maxBatchMessages: 100,
  maxBatchBytes: 250 * 1024,
} as const;
