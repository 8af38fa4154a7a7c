import { archiveAuditLog } from "../archive/archiveAuditLog";
import { expireArchives } from "../archive/expireArchives";
import type { CronJob } from "../cron/jobs";
import type { CronVars } from "../cron/vars";
import { sweepContentJobs } from "./contentJobSweep";
import { purgeExpiredContent } from "./contentRetention";
import type { RetentionLimits } from "./policy";
import { purgeExpired } from "./purgeExpired";

function limitsFrom(vars: CronVars): RetentionLimits {
  return { chunkSize: vars.RETENTION_CHUNK_SIZE, rowBudget: vars.RETENTION_ROW_BUDGET };
}

/** Hot-table retention: sdk_events per project, daily counts, request logs, idempotency records. */
export const retentionJob: CronJob = {
  name: "retention",
  async run({ db, now, vars }) {
    const result = await purgeExpired(db, now, limitsFrom(vars));
    return { counts: { ...result.counts }, more: result.more };
  },
};

/**
 * Audit rows past the hot period go to the cold archive (and only then leave the table); archives past
 * the cold period are deleted. A separate job from `retention`, so a storage outage fails only this one.
 */
export const auditArchiveJob: CronJob = {
  name: "audit-archive",
  async run({ db, now, vars, archive: storage }) {
    if (!storage) {
      // Nothing is deleted without an archive: audit rows simply stay hot until storage is configured.
      return {
        counts: { storage_configured: 0, audit_archived: 0, audit_objects_written: 0, archives_expired: 0 },
      };
    }
    const limits = limitsFrom(vars);
    const archived = await archiveAuditLog(db, storage, now, limits);
    const expired = await expireArchives(storage, now, limits.rowBudget, db);
    return {
      counts: { storage_configured: 1, ...archived.counts, archives_expired: expired.deleted },
      more: archived.more || expired.more,
    };
  },
};

/**
 * Generated content: expired containers (archived projects + 90 days; our objects first, then rows),
 * content job records after 400 days, jobs left open past 24 h (failed as abandoned) and staging copies of
 * finished jobs (functions/retention/contentJobSweep.ts). Its own job, so a media-storage outage fails nothing else.
 */
export const contentRetentionJob: CronJob = {
  name: "content-retention",
  async run({ db, now, vars, media, log }) {
    const result = await purgeExpiredContent(db, media, now, limitsFrom(vars), log);
    const sweep = await sweepContentJobs(db, media, now, log);
    return {
      counts: { storage_configured: media ? 1 : 0, ...result.counts, ...sweep.counts },
      more: result.more || sweep.more,
    };
  },
};

export const RETENTION_JOBS: CronJob[] = [retentionJob, auditArchiveJob, contentRetentionJob];
