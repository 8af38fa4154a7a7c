import { z } from "zod";
import { storageVarsSchema } from "../storage/config";

// What every Cron job may read, validated once per run by the Worker. Here, not in workers/cron, because
// the jobs (functions/) depend on it and functions never import from workers.
export const cronVarsSchema = storageVarsSchema.extend({
  DATABASE_URL: z.string().min(1),
  NEON_WS_PROXY: z.string().min(1).optional(),
  // Buckets on the S3-API account (functions/storage/config.ts). Without S3_ENDPOINT or ARCHIVE_BUCKET the
  // archive job does nothing (audit rows simply stay hot, never deleted unarchived); without S3_ENDPOINT
  // there are no dead letters to tend.
  ARCHIVE_BUCKET: z.string().min(3).max(63).optional(),
  DEAD_LETTER_BUCKET: z.string().min(3).max(63).default("layers-dead-letters"),
  // Project and org deletion (functions/lifecycle) erase generated media and org exports too.
  MEDIA_BUCKET: z.string().min(3).max(63).default("layers-media"),
  EXPORT_BUCKET: z.string().min(3).max(63).default("layers-exports"),
  // Retention work per run: rows per DELETE chunk, and rows per data class per run.
  RETENTION_CHUNK_SIZE: z.coerce.number().int().min(1).max(50_000).default(5_000),
  RETENTION_ROW_BUDGET: z.coerce.number().int().min(1).max(10_000_000).default(100_000),
  // Webhooks (functions/webhooks/dispatch.ts): deliveries put on the Queue per run, and how long one on the
  // Queue is left to the webhooks Worker before the sweep sends it again (the Worker's own lease is its
  // WEBHOOK_LEASE_SECONDS; both 300 s by default).
  WEBHOOK_DISPATCH_BUDGET: z.coerce.number().int().min(1).max(100_000).default(10_000),
  WEBHOOK_LEASE_SECONDS: z.coerce.number().int().min(1).max(3600).default(300),
});
export type CronVars = z.infer<typeof cronVarsSchema>;
