import { z } from "zod";
import type { ApiRateLimiter } from "./rateLimiter";

export interface ApiBindings {
  DATABASE_URL: string;
  NEON_WS_PROXY?: string;
  API_RATE_LIMIT_PER_MINUTE?: string;
  /** Tests only: lets a request carry its own "now" (X-Layers-Test-Now). Never set in production. */
  ALLOW_TEST_CLOCK?: string;
  RATE_LIMITER: DurableObjectNamespace<ApiRateLimiter>;
}

export const apiVarsSchema = z.object({
  DATABASE_URL: z.string().min(1),
  NEON_WS_PROXY: z.string().min(1).optional(),
  API_RATE_LIMIT_PER_MINUTE: z.coerce.number().int().min(1).max(100_000).default(600),
  ALLOW_TEST_CLOCK: z.enum(["true", "false"]).default("false"),
});
export type ApiVars = z.infer<typeof apiVarsSchema>;
