import { z } from "zod";
import { storageVarsSchema } from "../../functions/storage/config";

// The Worker's `env` is DeadLetterBindings, generated from its wrangler.toml by `npm run types`. These are
// the vars and secrets it reads, validated once per isolate (parseEnv).
export const deadLetterVarsSchema = storageVarsSchema.extend({
  DATABASE_URL: z.string().min(1),
  NEON_WS_PROXY: z.string().min(1).optional(),
  // Without storage there is nowhere durable to put a dead letter: a deploy without it fails loudly.
  S3_ENDPOINT: z.url(),
  DEAD_LETTER_BUCKET: z.string().min(3).max(63).default("layers-dead-letters"),
  RELAY_RECORD_ATTEMPTS: z.coerce.number().int().min(1).max(99).default(12),
});
export type DeadLetterVars = z.infer<typeof deadLetterVarsSchema>;
