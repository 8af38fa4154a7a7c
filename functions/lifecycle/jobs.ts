import type { CronJob } from "../cron/jobs";
import { purgeOrgDeletionReceipts, runDeletions } from "./cascade";

/**
 * The org and project deletion jobs of the Cron Worker (registered in functions/cron/jobs.ts). Org
 * deletions first: a project deletion of an org being deleted is left to the org's.
 */
export const LIFECYCLE_JOBS: CronJob[] = [
  {
    name: "org-deletions",
    run: ({ db, now, archive, deadLetters, media, exports }) =>
      runDeletions(db, "org", now, { archive, deadLetters, media, exports }),
  },
  {
    name: "project-deletions",
    run: ({ db, now, archive, deadLetters, media, exports }) =>
      runDeletions(db, "project", now, { archive, deadLetters, media, exports }),
  },
  { name: "org-deletion-receipt-purge", run: ({ db, now }) => purgeOrgDeletionReceipts(db, now) },
];
