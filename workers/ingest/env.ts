import { z } from "zod";

// The Worker's `env` is IngestBindings, generated from wrangler.toml by `npm run types`. These are the vars
// and secrets it reads, with their defaults and bounds, validated once per isolate (parseEnv): a bad deploy
// fails loudly.
export const ingestVarsSchema = z.object({
  DATABASE_URL: z.string().min(1),
  NEON_WS_PROXY: z.string().min(1).optional(),
  // How long a revocation or an archive may take to reach a warm isolate (README: 5 s).
  SDK_KEY_CACHE_TTL_SECONDS: z.coerce.number().int().min(0).max(3600).default(5),
});
export type IngestVars = z.infer<typeof ingestVarsSchema>;
