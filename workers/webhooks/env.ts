import { z } from "zod";
import { parseRetrySchedule } from "../../functions/webhooks/schedule";
import { databaseTimeoutMs } from "../../shared/db/timeoutVar";

// The Worker's `env` is WebhooksBindings, generated from its wrangler.toml by `npm run types` (the keyring
// secrets, read by parseKeyring). These are the vars and secrets it reads, validated once per isolate.
export const webhooksVarsSchema = z.object({
  DATABASE_URL: z.string().min(1),
  NEON_WS_PROXY: z.string().min(1).optional(),
  WEBHOOK_TIMEOUT_MS: z.coerce.number().int().min(50).max(30_000).default(15_000),
  // Cloudflare lets an invocation wait on 6 answers at once; see DeliverOptions.concurrentSends.
  WEBHOOK_CONCURRENT_SENDS: z.coerce.number().int().min(1).max(6).default(6),
  WEBHOOK_ALLOW_LOCAL_HTTP: z.enum(["true", "false"]).default("false"),
  WEBHOOK_RETRY_SCHEDULE_SECONDS: z
    .string()
    .optional()
    .transform((value, ctx) => {
      try {
        return parseRetrySchedule(value);
      } catch (error) {
        ctx.addIssue({ code: "custom", message: (error as Error).message });
        return z.NEVER;
      }
    }),
  WEBHOOK_LEASE_SECONDS: z.coerce.number().int().min(1).max(3600).default(300),
  DATABASE_TIMEOUT_MS: databaseTimeoutMs,
});
export type WebhooksVars = z.infer<typeof webhooksVarsSchema>;
