import { sql } from "kysely";
import type { Db } from "../../shared/db";
import { failJob } from "../content/jobs/run";
import { deleteKeys } from "../lifecycle/objects";
import type { ObjectStore } from "../storage/objectStore";
import { RETENTION } from "./policy";

// What a content job's Workflow could not finish (functions/content/jobs/run.ts, workers/content):
// - a job still open long after any Workflow could still be running it (the engine gave up while the
//   database was gone for longer than even the fail step's retries): failed as `abandoned`, its sealed
//   request cleared, content_job.failed emitted, like any failed job;
// - a staging copy (media for a partner's bucket, between generate and store) whose job has finished or
//   is gone: the Workflow deletes it, but a delete while our bucket was unreachable is not retried there.

/** Jobs failed per run, and staging keys looked at per run. */
const ABANDON_BATCH = 100;
const STAGING_KEYS_PER_RUN = 5_000;

export interface ContentJobSweepCounts {
  content_jobs_abandoned: number;
  content_staging_deleted: number;
}

export async function sweepContentJobs(
  db: Db,
  media: ObjectStore | undefined,
  now: Date,
  log?: (message: string, fields: Record<string, unknown>) => void,
): Promise<{ counts: ContentJobSweepCounts; more: boolean }> {
  const cutoff = new Date(now.getTime() - RETENTION.contentJobAbandonHours * 3_600_000);
  const { rows: stale } = await sql<{ id: string; org_id: string; project_id: string }>`
    select id, org_id, project_id from content_jobs
    where status in ('queued', 'running') and created_at < ${cutoff}
    order by created_at limit ${ABANDON_BATCH + 1}
  `.execute(db);
  const counts: ContentJobSweepCounts = { content_jobs_abandoned: 0, content_staging_deleted: 0 };
  for (const job of stale.slice(0, ABANDON_BATCH)) {
    await failJob(
      { db, media, now: () => now },
      { jobId: job.id, orgId: job.org_id, projectId: job.project_id },
      null,
      "abandoned",
    );
    counts.content_jobs_abandoned += 1;
  }
  let more = stale.length > ABANDON_BATCH;
  if (media) {
    try {
      await deleteFinishedStaging(db, media, counts);
    } catch (error) {
      // Our bucket is down: the copies wait for a later run; the rest of the job's work stands.
      log?.("content staging sweep: storage unavailable; the next run goes on", { error });
      more = true;
    }
  }
  return { counts, more };
}

/** Staging keys are staging/<org>/<project>/<job id>: the copy goes once its job is finished or gone. */
async function deleteFinishedStaging(
  db: Db,
  media: ObjectStore,
  counts: ContentJobSweepCounts,
): Promise<void> {
  const jobOf = (key: string) => key.slice(key.lastIndexOf("/") + 1);
  let seen = 0;
  let startAfter: string | undefined;
  while (seen < STAGING_KEYS_PER_RUN) {
    const page = await media.list("staging/", startAfter ? { startAfter } : {});
    if (page.keys.length === 0) return;
    seen += page.keys.length;
    const { rows: open } = await sql<{ id: string }>`
      select id from content_jobs
      where id = any(${page.keys.map(jobOf)}::text[]) and status in ('queued', 'running')
    `.execute(db);
    const keep = new Set(open.map((r) => r.id));
    const doomed = page.keys.filter((key) => !keep.has(jobOf(key)));
    // Counted per page: a page whose delete fails counts nothing, and the next run lists it again.
    await deleteKeys(media, doomed);
    counts.content_staging_deleted += doomed.length;
    if (!page.next) return;
    startAfter = page.keys.at(-1);
  }
}
