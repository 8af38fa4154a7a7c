import { type RawBuilder, sql } from "kysely";
import { EXPORT_LEASE_SECONDS } from "./lifetimes";

/**
 * On an org_exports row: a runner took it within the last lease and may still be writing parts under its
 * prefix (a runner writes for at most half its lease, functions/exports/runExport.ts). A heartbeat after
 * `now` is a failed run's retry time, not a runner. The org-deletion cascade and the expiry job wait for
 * it to be false before they delete the export's objects.
 */
export function runnerMayBeWriting(now: Date): RawBuilder<boolean> {
  const since = new Date(now.getTime() - EXPORT_LEASE_SECONDS * 1000);
  return sql<boolean>`coalesce(heartbeat_at between ${since} and ${now}, false)`;
}
