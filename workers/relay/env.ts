import { z } from "zod";
import { databaseTimeoutMs } from "../../shared/db/timeoutVar";

// The Worker's `env` is RelayBindings, generated from its wrangler.toml by `npm run types` (its dead-letter
// queue, where malformed messages go at once; the keyring secrets, read by parseKeyring). These are the
// vars and secrets it reads, validated once per isolate (parseEnv).
export const relayVarsSchema = z.object({
  DATABASE_URL: z.string().min(1),
  NEON_WS_PROXY: z.string().min(1).optional(),
  META_API_BASE: z.url().default("https://graph.facebook.com/v25.0"),
  TIKTOK_API_BASE: z.url().default("https://business-api.tiktok.com/open_api/v1.3"),
  APPLE_ADSERVICES_URL: z.url().default("https://api-adservices.apple.com/api/v1/"),
  RELAY_TIMEOUT_MS: z.coerce.number().int().min(50).max(60_000).default(10_000),
  APPLE_NOT_FOUND_RETRY_MS: z.coerce.number().int().min(0).max(60_000).default(5_000),
  RETRY_BASE_DELAY_SECONDS: z.coerce.number().int().min(0).max(3600).default(5),
  RETRY_MAX_DELAY_SECONDS: z.coerce.number().int().min(0).max(43_200).default(3600),
  DATABASE_TIMEOUT_MS: databaseTimeoutMs,
});
export type RelayVars = z.infer<typeof relayVarsSchema>;
