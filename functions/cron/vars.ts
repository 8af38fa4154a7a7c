import { z } from "zod";

// What every Cron job may read, validated once per run by the Worker. Here, not in workers/cron, because
// the jobs (functions/) depend on it and functions never import from workers.
export const cronVarsSchema = z.object({
  DATABASE_URL: z.string().min(1),
  NEON_WS_PROXY: z.string().min(1).optional(),
  // Cold audit archive: any S3-API store (R2 in production). Without an endpoint the archive job does
  // nothing and audit rows simply stay hot (never deleted unarchived).
  ARCHIVE_S3_ENDPOINT: z.url().optional(),
  ARCHIVE_S3_BUCKET: z.string().min(3).max(63).default("layers-audit-archive"),
  ARCHIVE_S3_REGION: z.string().min(1).default("auto"),
  ARCHIVE_S3_ACCESS_KEY_ID: z.string().min(1).optional(),
  ARCHIVE_S3_SECRET_ACCESS_KEY: z.string().min(1).optional(),
  // Retention work per run: rows per DELETE chunk, and rows per data class per run.
  RETENTION_CHUNK_SIZE: z.coerce.number().int().min(1).max(50_000).default(5_000),
  RETENTION_ROW_BUDGET: z.coerce.number().int().min(1).max(10_000_000).default(100_000),
});
export type CronVars = z.infer<typeof cronVarsSchema>;
