import { sql } from "kysely";
import type { Db } from "../../shared/db";
import { type ChunkedDelete, deleteInChunks } from "./deleteInChunks";
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
  sdk_users: number;
  apple_attributions: number;
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
  const projects = await db
    .selectFrom("projects")
    .select(["id", "event_retention_days"])
    .orderBy("id")
    .execute();
  const events = await purgePerProject(db, projects, now, limits, eventsOf);
  const users = await purgePerProject(db, projects, now, limits, usersOf);
  const attributions = await purgePerProject(db, projects, now, limits, attributionsOf);

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
      sdk_users: users.deleted,
      apple_attributions: attributions.deleted,
      event_daily_counts: daily.deleted,
      request_logs: requests.deleted,
      idempotency_keys: idempotency.deleted,
    },
    more: events.more || users.more || attributions.more || daily.more || requests.more || idempotency.more,
  };
}

type Project = { id: string; event_retention_days: number };

/**
 * The per-user classes of a project share its event retention: an event goes once it is older than the
 * window; a user's current state once their newest event is (state never outlives the events it came from);
 * an Apple attribution once it was recorded before the window, or when its user's state is gone.
 */
type PerProjectClass = (project: unknown, cutoff: unknown) => ChunkedDelete;

/** sdk_events: `project_id = $1 and ts < $2` is a range scan of sdk_events_project_ts. */
const eventsOf: PerProjectClass = (project, cutoff) => ({
  table: "sdk_events",
  where: sql`project_id = ${project} and ts < ${cutoff}`,
  orderBy: "ts",
});

/** sdk_users: last_seen_at is the user's newest event time (sdk_users_project_seen). */
const usersOf: PerProjectClass = (project, cutoff) => ({
  table: "sdk_users",
  where: sql`project_id = ${project} and last_seen_at < ${cutoff}`,
  orderBy: "last_seen_at",
});

/** apple_attributions (apple_attributions_project_time), plus any whose user's state is gone. */
const attributionsOf: PerProjectClass = (project, cutoff) => ({
  table: "apple_attributions",
  where: sql`project_id = ${project} and (attributed_at < ${cutoff} or not exists (
    select 1 from sdk_users u where u.project_id = apple_attributions.project_id
      and u.user_id = apple_attributions.user_id))`,
  orderBy: "attributed_at",
});

/**
 * One class, project by project with each project's own window, within the run's row budget. The projects
 * with something expired are found first, in one statement (an index probe per project): most projects
 * have nothing to purge on most runs, and a round trip per project and class would make a run's cost grow
 * with the number of projects rather than with the rows it removes.
 */
async function purgePerProject(
  db: Db,
  projects: Project[],
  now: Date,
  limits: RetentionLimits,
  spec: PerProjectClass,
): Promise<{ deleted: number; more: boolean }> {
  if (projects.length === 0) return { deleted: 0, more: false };
  const cutoffs = projects.map((p) => daysBefore(now, eventRetentionDays(p.event_retention_days)));
  const probe = spec(sql.ref("c.id"), sql.ref("c.cutoff"));
  const ids = projects.map((p) => p.id);
  const times = cutoffs.map((cutoff) => cutoff.toISOString());
  const { rows } = await sql<{ id: string }>`
    select c.id from unnest(${ids}::text[], ${times}::timestamptz[]) as c(id, cutoff)
    where exists (select 1 from ${sql.table(probe.table)} where ${probe.where})
  `.execute(db);
  const due = new Set(rows.map((r) => r.id));
  let deleted = 0;
  for (const [i, project] of projects.entries()) {
    const cutoff = cutoffs[i];
    if (!due.has(project.id) || cutoff === undefined) continue;
    const result = await deleteInChunks(
      db,
      spec(project.id, cutoff),
      limits.chunkSize,
      limits.rowBudget - deleted,
    );
    deleted += result.deleted;
    if (result.more || deleted >= limits.rowBudget) return { deleted, more: true };
  }
  return { deleted, more: false };
}
