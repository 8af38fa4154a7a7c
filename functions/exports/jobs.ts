import { sql } from "kysely";
import type { Db } from "../../shared/db";
import type { CronJob } from "../cron/jobs";
import type { CronVars } from "../cron/vars";
import { deletePrefix } from "../lifecycle/objects";
import type { ObjectStore } from "../storage/objectStore";
import { runnerMayBeWriting } from "./lease";
import { archiveKey, DEFAULT_EXPORT_LIMITS, type ExportLimits, exportPrefix, runExports } from "./runExport";

export function exportLimitsFrom(vars: CronVars): ExportLimits {
  return {
    ...DEFAULT_EXPORT_LIMITS,
    pageRows: vars.EXPORT_PAGE_ROWS,
    stepsPerRun: vars.EXPORT_STEPS_PER_RUN,
    partBytes: vars.EXPORT_PART_BYTES,
  };
}

/**
 * Org exports (POST /v1/org/exports): every minute, each due export advances by a bounded number of steps
 * (functions/exports/runExport.ts). Runs as the exporter role (EXPORT_DATABASE_URL); without it, or without
 * an export bucket, exports stay queued and this job says so.
 */
export const exportJob: CronJob = {
  name: "org-exports",
  everyMinute: true,
  async run({ exportDb, exports, archive, media, now, vars }) {
    if (!exportDb || !exports) return { counts: { exports_configured: 0 } };
    const result = await runExports({
      db: exportDb,
      exports,
      archive,
      media,
      now,
      limits: exportLimitsFrom(vars),
    });
    return { counts: { exports_configured: 1, ...result.counts }, more: result.more };
  },
};

/**
 * Archives past their 7 days: the object and anything left under the export's prefix are deleted, then the
 * job is marked expired (its row stays as the record). The objects of failed exports and of exports a
 * deletion request withdrew (parts, media copies, the archive, an unfinished multipart upload) are deleted
 * the same way, run after run until storage answers, then the job says so (`state.cleanup` false). In
 * production a bucket lifecycle rule on the `exports/` prefix (delete after 8 days) backs this up (README,
 * Org export).
 */
export async function expireExports(
  db: Db,
  store: ObjectStore,
  now: Date,
  budget: number,
): Promise<{ expired: number; cleaned: number; more: boolean }> {
  const due = await sql<{ id: string; org_id: string; status: string; upload_id: string | null }>`
    (select id, org_id, status, null as upload_id from org_exports
      where status = 'succeeded' and expires_at <= ${now}
      order by expires_at limit ${budget + 1})
    union all
    (select id, org_id, status, state->>'uploadId' from org_exports
      where status in ('failed', 'expired') and (state->>'cleanup')::boolean
        -- Withdrawn while running: wait until its runner can no longer write.
        and not ${runnerMayBeWriting(now)}
      order by finished_at limit ${budget + 1})
  `.execute(db);
  let expired = 0;
  let cleaned = 0;
  for (const row of due.rows.slice(0, budget)) {
    const prefix = exportPrefix(row.org_id, row.id);
    if (row.upload_id) await store.abortMultipart(archiveKey(row.org_id, row.id), row.upload_id);
    await deletePrefix(store, prefix);
    if (row.status === "succeeded") {
      await sql`update org_exports set status = 'expired' where id = ${row.id} and status = 'succeeded'`.execute(
        db,
      );
      expired += 1;
    } else {
      await sql`
        update org_exports set state = state || '{"cleanup": false, "uploadId": null}'::jsonb
        where id = ${row.id} and status = ${row.status}
      `.execute(db);
      cleaned += 1;
    }
  }
  return { expired, cleaned, more: due.rows.length > budget };
}

export const exportExpiryJob: CronJob = {
  name: "org-export-expiry",
  // One indexed query when nothing is due: cheap enough for every minute.
  everyMinute: true,
  async run({ db, exports, now }) {
    if (!exports) return { counts: { exports_expired: 0, failed_exports_cleaned: 0 } };
    const result = await expireExports(db, exports, now, 100);
    return {
      counts: { exports_expired: result.expired, failed_exports_cleaned: result.cleaned },
      more: result.more,
    };
  },
};

export const EXPORT_JOBS: CronJob[] = [exportJob, exportExpiryJob];
