import { sql } from "kysely";
import type { Db } from "../../shared/db";
import { daysBefore, RETENTION, yearsBefore } from "../retention/policy";
import type { ObjectStore } from "../storage/objectStore";
import { AUDIT_PREFIX, auditDayPrefix } from "./auditKeys";

/**
 * Deletes cold audit archives whose day is past the hot period plus the cold period, at most `budget`
 * objects per run. Keys are date-first, so the expired ones are exactly the keys listed before the
 * cutoff day's prefix: the listing stops at the first key that is still kept.
 */
export async function expireArchives(
  storage: ObjectStore,
  now: Date,
  budget: number,
  db?: Db,
): Promise<{ deleted: number; more: boolean }> {
  const cutoffDay = yearsBefore(daysBefore(now, RETENTION.auditHotDays), RETENTION.auditColdYears)
    .toISOString()
    .slice(0, 10);
  // The index forgets expired days first: a reader never follows it to an object about to go.
  if (db) await sql`delete from audit_archive_objects where day < ${cutoffDay}::date`.execute(db);
  const boundary = auditDayPrefix(cutoffDay);
  let deleted = 0;
  let after: string | undefined;
  for (;;) {
    const page = await storage.list(AUDIT_PREFIX, after ? { after } : {});
    for (const key of page.keys) {
      if (key >= boundary) return { deleted, more: false };
      if (deleted >= budget) return { deleted, more: true };
      await storage.delete(key);
      deleted += 1;
    }
    if (!page.next) return { deleted, more: false };
    after = page.next;
  }
}
