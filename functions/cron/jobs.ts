import type { Db } from "../../shared/db";
import { DSAR_JOBS } from "../dsar/jobs";
import { RELAY_JOBS } from "../relay/jobs";
import { RETENTION_JOBS } from "../retention/jobs";
import type { CronVars } from "./vars";

/** What a job gets: a maintenance-role connection, the run's clock (the trigger's scheduled time), its vars. */
export interface JobContext {
  db: Db;
  now: Date;
  vars: CronVars;
}

/**
 * One Cron job: bounded work per run, resumable, idempotent. Returns what it did per data class (row
 * counts), which the Worker logs; `more: true` means work is left for the next run.
 */
export interface CronJob {
  name: string;
  run(ctx: JobContext): Promise<{ counts: Record<string, number>; more?: boolean }>;
}

/** Every job, in the order a run executes them. */
export const CRON_JOBS: CronJob[] = [...DSAR_JOBS, ...RELAY_JOBS, ...RETENTION_JOBS];
