export interface CronBindings {
  DATABASE_URL: string;
  NEON_WS_PROXY?: string;
  ARCHIVE_S3_ENDPOINT?: string;
  ARCHIVE_S3_BUCKET?: string;
  ARCHIVE_S3_REGION?: string;
  ARCHIVE_S3_ACCESS_KEY_ID?: string;
  ARCHIVE_S3_SECRET_ACCESS_KEY?: string;
  RETENTION_CHUNK_SIZE?: string;
  RETENTION_ROW_BUDGET?: string;
}

export { type CronVars, cronVarsSchema } from "../../functions/cron/vars";
