import { z } from "zod";
import { storageVarsSchema } from "../../functions/storage/config";
import { databaseTimeoutMs } from "../../shared/db/timeoutVar";

// The Worker's `env` is ContentBindings, generated from its wrangler.toml by `npm run types` (the AGENT
// service binding, the CONTENT_JOBS workflow, the keyring secrets read by parseKeyring). These are the vars
// and secrets it reads, validated once per isolate (parseEnv).
export const contentVarsSchema = storageVarsSchema.extend({
  DATABASE_URL: z.string().min(1),
  NEON_WS_PROXY: z.string().min(1).optional(),
  DATABASE_TIMEOUT_MS: databaseTimeoutMs,
  MEDIA_BUCKET: z.string().min(3).max(63).default("layers-media"),
  CONTENT_STEP_RETRIES: z.coerce.number().int().min(0).max(10).default(3),
  CONTENT_RETRY_DELAY_MS: z.coerce.number().int().min(1).max(3_600_000).default(10_000),
  CONTENT_PARTNER_TIMEOUT_MS: z.coerce.number().int().min(100).max(60_000).default(15_000),
  STORAGE_ALLOW_LOCAL_HTTP: z.enum(["true", "false"]).default("false"),
  CONTENT_TEST_CRASH_AFTER: z.enum(["", "store", "record"]).default(""),
});
export type ContentVars = z.infer<typeof contentVarsSchema>;
