// How long each data class is kept (the data-protection page's retention table is the source). Every
// age is measured against the run's `now`, the Cron trigger's scheduled time.

export const RETENTION = {
  /** sdk_events: per project (`projects.event_retention_days`), within these bounds. */
  eventDaysDefault: 400,
  eventDaysFloor: 30,
  eventDaysCeiling: 400,
  /** The aggregated warehouse (event_daily_counts). */
  dailyCountsYears: 2,
  requestLogDays: 30,
  idempotencyHours: 24,
  /** Audit rows stay queryable this long, then move to the cold archive… */
  auditHotDays: 90,
  /** …where an org-day's object is kept this long after the hot period ends. */
  auditColdYears: 2,
  /** Generated media of an archived project (content_containers): archived_at + this grace, then deleted. */
  containerGraceDays: 90,
  /** content_jobs rows (metadata only): this long after creation. */
  contentJobDays: 400,
  /**
   * A content job still open this long after creation is failed as `abandoned` (no Workflow runs that
   * long: four steps of at most four 5-minute tries, then a fail step of about 2.8 h of retries).
   */
  contentJobAbandonHours: 24,
} as const;

/** Work limits per run, so a run stays short and the next one resumes. */
export interface RetentionLimits {
  /** Rows per DELETE statement (each its own short transaction). */
  chunkSize: number;
  /** Rows per data class per run. */
  rowBudget: number;
}

export const DEFAULT_LIMITS: RetentionLimits = { chunkSize: 5_000, rowBudget: 100_000 };

const DAY_MS = 86_400_000;

export function daysBefore(now: Date, days: number): Date {
  return new Date(now.getTime() - days * DAY_MS);
}

export function hoursBefore(now: Date, hours: number): Date {
  return new Date(now.getTime() - hours * 3_600_000);
}

/** The same calendar instant `years` earlier (UTC); 29 February falls back to 28 February. */
export function yearsBefore(now: Date, years: number): Date {
  const then = new Date(now.getTime());
  then.setUTCFullYear(now.getUTCFullYear() - years);
  if (then.getUTCMonth() !== now.getUTCMonth()) then.setUTCDate(0);
  return then;
}

/** A project's event retention in days, clamped to the floor and ceiling whatever the row holds. */
export function eventRetentionDays(configured: number | null | undefined): number {
  const days = configured ?? RETENTION.eventDaysDefault;
  return Math.min(RETENTION.eventDaysCeiling, Math.max(RETENTION.eventDaysFloor, Math.trunc(days)));
}
