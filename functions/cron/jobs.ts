import type { Db } from "../../shared/db";
import { DEAD_LETTER_JOBS } from "../deadLetters/jobs";
import { DSAR_JOBS } from "../deletionRequests/jobs";
import { EXPORT_JOBS } from "../exports/jobs";
import { LIFECYCLE_JOBS } from "../lifecycle/jobs";
import { RELAY_JOBS } from "../relay/jobs";
import { RETENTION_JOBS } from "../retention/jobs";
import type { ObjectStore } from "../storage/objectStore";
import { WEBHOOK_JOBS } from "../webhooks/jobs";
import type { WebhookQueue } from "../webhooks/queueMessage";
import type { CronVars } from "./vars";

/** The part of a Queue binding the jobs use. */
export interface QueueSender {
  send(body: unknown, options?: { contentType?: "json" }): Promise<unknown>;
}

/**
 * What a job gets: a maintenance-role connection, the run's clock (the trigger's scheduled time), its vars,
 * and the stores and queues the Worker is bound to (undefined when not configured).
 */
export interface JobContext {
  db: Db;
  now: Date;
  vars: CronVars;
  /** The cold audit archive bucket. */
  archive?: ObjectStore | undefined;
  /** The exporter role's connection (EXPORT_DATABASE_URL): org exports run in tenant transactions. */
  exportDb?: Db | undefined;
  /** Org export archives (functions/exports); erased with their org (functions/lifecycle). */
  exports?: ObjectStore | undefined;
  /**
   * Generated media of content jobs: expired containers' objects are deleted
   * (functions/retention/contentRetention.ts), exports read it, project and org deletion erase it.
   */
  media?: ObjectStore | undefined;
  /** A warning line in the Worker's log (the run's summary line is logged by the Worker itself). */
  log?: ((message: string, fields: Record<string, unknown>) => void) | undefined;
  /** Dead-lettered events and relay batches (functions/deadLetters). */
  deadLetters?: ObjectStore | undefined;
  /** Producer to "layers-events": dead letters are redriven through the normal persist path. */
  eventsQueue?: QueueSender | undefined;
  /** Producer to "layers-relay-dlq": relay dead letters kept in storage while the database was down. */
  relayDeadLetterQueue?: QueueSender | undefined;
  /** Producer to "layers-webhooks": the outbox sweep and due retries (functions/webhooks/dispatch.ts). */
  webhooksQueue?: WebhookQueue | undefined;
}

/**
 * One Cron job: bounded work per run, resumable, idempotent. Returns what it did per data class (row
 * counts), which the Worker logs; `more: true` means work is left for the next run.
 */
export interface CronJob {
  name: string;
  /**
   * Runs on the every-minute trigger too (webhook delivery waits at most a minute); other jobs run only on
   * the five-minute one.
   */
  everyMinute?: boolean;
  run(ctx: JobContext): Promise<{ counts: Record<string, number>; more?: boolean }>;
}

/** Every job, in the order a run executes them. */
export const CRON_JOBS: CronJob[] = [
  ...DSAR_JOBS,
  ...LIFECYCLE_JOBS,
  ...RELAY_JOBS,
  ...RETENTION_JOBS,
  ...DEAD_LETTER_JOBS,
  ...WEBHOOK_JOBS,
  ...EXPORT_JOBS,
];

/** The trigger (wrangler.toml) that runs only the `everyMinute` jobs. */
export const EVERY_MINUTE_CRON = "* * * * *";

/** The jobs a trigger runs: every job on the five-minute one, the `everyMinute` jobs on every trigger. */
export function jobsFor(cron: string): CronJob[] {
  return cron === EVERY_MINUTE_CRON ? CRON_JOBS.filter((job) => job.everyMinute) : CRON_JOBS;
}
