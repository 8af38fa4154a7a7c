import { z } from "zod";
import type { RelayMessage } from "../../shared/schemas/relay";
import type { ApiRateLimiter } from "./rateLimiter";

export interface ApiBindings {
  DATABASE_URL: string;
  NEON_WS_PROXY?: string;
  API_RATE_LIMIT_PER_MINUTE?: string;
  /** Tests only: lets a request carry its own "now" (X-Layers-Test-Now). Never set in production. */
  ALLOW_TEST_CLOCK?: string;
  RATE_LIMITER: DurableObjectNamespace<ApiRateLimiter>;
  /**
   * Secrets: the destination-token keyring (functions/destinations/crypto.ts parseKeyring). JSON object of
   * key id → base64 of 32 bytes, and the id new writes use. Read only by the destination routes, so a
   * missing keyring breaks nothing else.
   */
  DESTINATION_KEYS?: string;
  DESTINATION_KEY_ID?: string;
  META_API_BASE?: string;
  TIKTOK_API_BASE?: string;
  APPLE_ADSERVICES_URL?: string;
  DESTINATION_TEST_TIMEOUT_MS?: string;
  /** Producer binding to the relay queue: replays of dead-lettered batches go back through it. */
  RELAY_QUEUE?: Queue<RelayMessage>;
}

export const apiVarsSchema = z.object({
  DATABASE_URL: z.string().min(1),
  NEON_WS_PROXY: z.string().min(1).optional(),
  API_RATE_LIMIT_PER_MINUTE: z.coerce.number().int().min(1).max(100_000).default(600),
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
