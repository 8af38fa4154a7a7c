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
  // Generated media (content containers): expired objects are deleted here (without S3_ENDPOINT, expired
  // cloud containers stay: a row never goes before its object); project and org deletion
  // (functions/lifecycle) erase generated media and org exports too.
  MEDIA_BUCKET: z.string().min(3).max(63).default("layers-media"),
  // Retention work per run: rows per DELETE chunk, and rows per data class per run.
  RETENTION_CHUNK_SIZE: z.coerce.number().int().min(1).max(50_000).default(5_000),
  RETENTION_ROW_BUDGET: z.coerce.number().int().min(1).max(10_000_000).default(100_000),
  // Webhooks (functions/webhooks/dispatch.ts): deliveries put on the Queue per run, and how long one on the
  // Queue is left to the webhooks Worker before the sweep sends it again (the Worker's own lease is its
  // WEBHOOK_LEASE_SECONDS; both 300 s by default).
  WEBHOOK_DISPATCH_BUDGET: z.coerce.number().int().min(1).max(100_000).default(10_000),
  WEBHOOK_LEASE_SECONDS: z.coerce.number().int().min(1).max(3600).default(300),
  // Org exports (functions/exports): the exporter role's connection string (secret; without it exports stay
  // queued), the bucket (also erased by org deletion; media are read from MEDIA_BUCKET above), rows per part, steps per run and the
  // multipart part size (S3/R2: ≥ 5 MiB).
  EXPORT_DATABASE_URL: z.string().min(1).optional(),
  EXPORT_BUCKET: z.string().min(3).max(63).default("layers-exports"),
  EXPORT_PAGE_ROWS: z.coerce.number().int().min(1).max(50_000).default(5_000),
  EXPORT_STEPS_PER_RUN: z.coerce.number().int().min(1).max(10_000).default(50),
  EXPORT_PART_BYTES: z.coerce
    .number()
    .int()
    .min(5 * 1024 * 1024)
    .max(100 * 1024 * 1024)
    .default(8 * 1024 * 1024),
});
export type CronVars = z.infer<typeof cronVarsSchema>;
