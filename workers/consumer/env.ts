import { z } from "zod";
import { databaseTimeoutMs } from "../../shared/db/timeoutVar";

// The Worker's `env` is ConsumerBindings, generated from its wrangler.toml by `npm run types`: the
// dead-letter queue (malformed messages, events the database refuses) and the relay queue (one message per
// destination and batch of new events). These are the vars and secrets it reads, validated once per
// isolate (parseEnv).
export const consumerVarsSchema = z.object({
  DATABASE_URL: z.string().min(1),
  NEON_WS_PROXY: z.string().min(1).optional(),
  RETRY_BASE_DELAY_SECONDS: z.coerce.number().int().min(0).max(3600).default(2),
  RETRY_MAX_DELAY_SECONDS: z.coerce.number().int().min(0).max(43200).default(600),
  DATABASE_TIMEOUT_MS: databaseTimeoutMs,
});
export type ConsumerVars = z.infer<typeof consumerVarsSchema>;
