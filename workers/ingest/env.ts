import { z } from "zod";
import type { EventsQueue } from "../../functions/ingest/enqueueEvents";

/** Bindings from wrangler.toml and secrets. Validated once per isolate; a bad deploy fails loudly. */
export interface IngestBindings {
  DATABASE_URL: string;
  NEON_WS_PROXY?: string;
  SDK_KEY_CACHE_TTL_SECONDS?: string;
  EVENTS_QUEUE: EventsQueue;
  INGEST_RATE_LIMITER: RateLimit;
}

export const ingestVarsSchema = z.object({
  DATABASE_URL: z.string().min(1),
  NEON_WS_PROXY: z.string().min(1).optional(),
  // How long a revocation or an archive may take to reach a warm isolate (README: 5 s).
  SDK_KEY_CACHE_TTL_SECONDS: z.coerce.number().int().min(0).max(3600).default(5),
});
export type IngestVars = z.infer<typeof ingestVarsSchema>;
