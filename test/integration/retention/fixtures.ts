import type { Db } from "../../../shared/db";
import type { Stack } from "../../support/stack";

/** What the Cron Worker logged for `job` in its latest run: counts per data class, or the failure. */
export function lastJobLog(
  stack: Stack,
  job: string,
): { msg: string; counts?: Record<string, number>; more?: boolean } {
  const lines = stack.logs
    .map((line) => {
      try {
        return JSON.parse(line) as {
          msg?: string;
          job?: string;
          counts?: Record<string, number>;
          more?: boolean;
        };
      } catch {
        return undefined;
      }
    })
    .filter(
      (entry) => entry?.job === job && (entry.msg === "cron job done" || entry.msg === "cron job failed"),
    );
  const last = lines.at(-1);
  if (!last?.msg) throw new Error(`no log line for cron job ${job}`);
  return { msg: last.msg, counts: last.counts, more: last.more };
}

let sequence = 0;
/** A unique id per call, so rows from different tests never collide. */
export function uniq(prefix: string): string {
  sequence += 1;
  return `${prefix}_${Date.now().toString(36)}_${sequence}`;
}

export async function insertEvent(
  db: Db,
  t: { orgId: string; projectId: string },
  ts: Date,
  eventId = uniq("evt"),
) {
  await db
    .insertInto("sdk_events")
    .values({
      org_id: t.orgId,
      project_id: t.projectId,
      event_id: eventId,
      name: "purchase",
      user_id: "user-1",
      ts,
      received_at: ts,
      properties: JSON.stringify({ plan: "pro" }),
    })
    .execute();
  return eventId;
}

export async function eventIds(db: Db, projectId: string): Promise<string[]> {
  const rows = await db
    .selectFrom("sdk_events")
    .select("event_id")
    .where("project_id", "=", projectId)
    .orderBy("event_id")
    .execute();
  return rows.map((r) => r.event_id);
}
