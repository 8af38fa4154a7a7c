import { z } from "zod";
import { storageVarsSchema } from "../../functions/storage/config";

// The Worker's `env` is ApiBindings, generated from its wrangler.toml by `npm run types`: the per-key
// API_RATE_LIMITER rate-limit binding, RELAY_QUEUE (replays of dead-lettered batches go back through it) and the
// destination-token keyring secrets (DESTINATION_KEYS, DESTINATION_KEY_ID: read only by the destination
// routes, through functions/destinations/crypto.ts parseKeyring, so a missing keyring breaks nothing else).
// These schemas are the vars and secrets it reads, validated once per isolate (parseEnv).
export const apiVarsSchema = z.object({
  DATABASE_URL: z.string().min(1),
  NEON_WS_PROXY: z.string().min(1).optional(),
  // Local only: where reads find the stand-in for Neon's SQL-over-HTTP endpoint (scripts/local/neon-http.ts).
  NEON_HTTP_PROXY: z.string().min(1).optional(),
  // Per-isolate cache of found API keys: a revoked or expired key still answers reads on a warm isolate for
  // at most this long (the README promises 5 s); changes always look the key up afresh. 0 turns it off.
  API_KEY_CACHE_TTL_SECONDS: z.coerce.number().int().min(0).max(60).default(5),
  API_RATE_LIMIT_PER_MINUTE: z.coerce.number().int().min(1).max(100_000).default(600),
  // Tests only: lets a request carry its own "now" (X-Layers-Test-Now). Never set in production.
  ALLOW_TEST_CLOCK: z.enum(["true", "false"]).default("false"),
});
export type ApiVars = z.infer<typeof apiVarsSchema>;

/**
 * Where test-send finds the ad platforms (functions/relay sendToDestination); vars so tests point them at
 * local fakes. Read only by the destination routes.
 */
export const destinationVarsSchema = z.object({
  META_API_BASE: z.url().default("https://graph.facebook.com/v25.0"),
  TIKTOK_API_BASE: z.url().default("https://business-api.tiktok.com/open_api/v1.3"),
  APPLE_ADSERVICES_URL: z.url().default("https://api-adservices.apple.com/api/v1/"),
  DESTINATION_TEST_TIMEOUT_MS: z.coerce.number().int().min(100).max(30_000).default(10_000),
});

/** Storage configs (partner buckets for generated content). Read only by the storage-config routes. */
export const storageConfigVarsSchema = z.object({
  // Dev and tests only: lets a storage config's endpoint be plain http to a loopback host (local S3
  // servers). Production keeps the default: https to a public host only (functions/content/endpointUrl.ts).
  STORAGE_ALLOW_LOCAL_HTTP: z.enum(["true", "false"]).default("false"),
  // Bounds each of the check's two calls (write, delete) to the partner's endpoint.
  STORAGE_CHECK_TIMEOUT_MS: z.coerce.number().int().min(100).max(30_000).default(10_000),
});

/**
 * Webhook endpoints (workers/api/routes/webhookEndpoints.ts): whether plain http to the local machine is
 * allowed (true only under `npm run dev` and tests; production takes https only) and the test send's
 * timeout. Read only by the webhook routes.
 */
export const webhookVarsSchema = z.object({
  WEBHOOK_ALLOW_LOCAL_HTTP: z.enum(["true", "false"]).default("false"),
  WEBHOOK_TEST_TIMEOUT_MS: z.coerce.number().int().min(100).max(30_000).default(10_000),
});

/**
 * Our own buckets on the S3-API account (R2 in production, the local S3 server in dev and tests; S3_*
 * secrets, as for the Cron Worker): generated media (content containers: signed download URLs, deletes),
 * org export archives (GET /v1/org/exports/{id} signs their URLs) and the cold audit archive (GET
 * /v1/audit-log reads ranges older than the hot table). Without S3_ENDPOINT a cloud container's get or
 * delete answers 503 storage_unavailable, exports have no download URL and there are no cold reads.
 */
export const bucketVarsSchema = storageVarsSchema.extend({
  MEDIA_BUCKET: z.string().min(3).max(63).default("layers-media"),
  EXPORT_BUCKET: z.string().min(3).max(63).default("layers-exports"),
  ARCHIVE_BUCKET: z.string().min(3).max(63).optional(),
});

/**
 * Content jobs (workers/api/routes/contentJobs.ts): the buckets and the synchronous wait's bound (then 202
 * with the job). Read only by the content-job routes.
 */
export const contentJobVarsSchema = bucketVarsSchema.extend({
  CONTENT_SYNC_WAIT_MS: z.coerce.number().int().min(0).max(60_000).default(30_000),
});
