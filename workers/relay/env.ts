import { z } from "zod";
import { databaseTimeoutMs } from "../../shared/db/timeoutVar";

export interface RelayBindings {
  DATABASE_URL: string;
  NEON_WS_PROXY?: string;
  DESTINATION_KEYS?: string;
  DESTINATION_KEY_ID?: string;
  META_API_BASE?: string;
  TIKTOK_API_BASE?: string;
  APPLE_ADSERVICES_URL?: string;
  RELAY_TIMEOUT_MS?: string;
  APPLE_NOT_FOUND_RETRY_MS?: string;
  RETRY_BASE_DELAY_SECONDS?: string;
  RETRY_MAX_DELAY_SECONDS?: string;
  DATABASE_TIMEOUT_MS?: string;
  /** Producer binding to the relay's dead-letter queue: malformed messages go straight there. */
  RELAY_DLQ: Queue<unknown>;
}

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
