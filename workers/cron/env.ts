import type { QueueSender } from "../../functions/cron/jobs";

export interface CronBindings {
  DATABASE_URL: string;
  NEON_WS_PROXY?: string;
  S3_ENDPOINT?: string;
  S3_REGION?: string;
  S3_ACCESS_KEY_ID?: string;
  S3_SECRET_ACCESS_KEY?: string;
  ARCHIVE_BUCKET?: string;
  DEAD_LETTER_BUCKET?: string;
  RETENTION_CHUNK_SIZE?: string;
  RETENTION_ROW_BUDGET?: string;
  /** Producer to "layers-events": dead events are redriven through the normal persist path. */
  EVENTS_QUEUE?: QueueSender;
  /** Producer to "layers-relay-dlq": relay dead letters kept in storage go back to be recorded. */
  RELAY_DLQ?: QueueSender;
}

export { type CronVars, cronVarsSchema } from "../../functions/cron/vars";
