import { sql } from "kysely";
import type { Db } from "../../shared/db";
import { deleteInChunks } from "./deleteInChunks";
import {
  DEFAULT_LIMITS,
  daysBefore,
  eventRetentionDays,
  hoursBefore,
  RETENTION,
  type RetentionLimits,
  yearsBefore,
} from "./policy";

export interface PurgeCounts {
  sdk_events: number;
  event_daily_counts: number;
  request_logs: number;
  idempotency_keys: number;
}

/**
 * One retention pass over the hot tables, each class bounded by the run's row budget. A row is removed
 * once it is strictly older than its class's limit at `now`; a row exactly at the limit stays until the
 * next run. Project retention is read at the start of every run, so a change applies on the next run.
 */
export async function purgeExpired(
  db: Db,
  now: Date,
  limits: RetentionLimits = DEFAULT_LIMITS,
): Promise<{ counts: PurgeCounts; more: boolean }> {
  const { chunkSize, rowBudget } = limits;
  const events = await purgeEvents(db, now, limits);

  const dayCutoff = yearsBefore(now, RETENTION.dailyCountsYears).toISOString().slice(0, 10);
  const daily = await deleteInChunks(
    db,
    {
      table: "event_daily_counts",
      // `day` is a UTC date: a day is expired once it ends before the cutoff instant's day.
      where: sql`day < ${dayCutoff}::date`,
      orderBy: "day",
    },
    chunkSize,
    rowBudget,
  );
  const requests = await deleteInChunks(
    db,
    {
      table: "request_logs",
      where: sql`occurred_at < ${daysBefore(now, RETENTION.requestLogDays)}`,
      orderBy: "occurred_at",
    },
    chunkSize,
    rowBudget,
  );
  const idempotency = await deleteInChunks(
    db,
    {
      table: "idempotency_keys",
      where: sql`created_at < ${hoursBefore(now, RETENTION.idempotencyHours)}`,
      orderBy: "created_at",
    },
    chunkSize,
    rowBudget,
  );
  return {
    counts: {
      sdk_events: events.deleted,
      event_daily_counts: daily.deleted,
      request_logs: requests.deleted,
      idempotency_keys: idempotency.deleted,
    },
    more: events.more || daily.more || requests.more || idempotency.more,
  };
}

/**
 * sdk_events, project by project with each project's own window. The predicate `project_id = $1 and
 * ts < $2` is a range scan of sdk_events_project_ts; the delete then goes by primary key.
 */
async function purgeEvents(db: Db, now: Date, limits: RetentionLimits) {
  const projects = await db
    .selectFrom("projects")
    .select(["id", "event_retention_days"])
    .orderBy("id")
    .execute();
  let deleted = 0;
  for (const project of projects) {
    const cutoff = daysBefore(now, eventRetentionDays(project.event_retention_days));
    const result = await deleteInChunks(
      db,
      {
        table: "sdk_events",
        where: sql`project_id = ${project.id} and ts < ${cutoff}`,
        orderBy: "ts",
      },
      limits.chunkSize,
      limits.rowBudget - deleted,
    );
    deleted += result.deleted;
    if (result.more || deleted >= limits.rowBudget) return { deleted, more: true };
  }
  return { deleted, more: false };
}
