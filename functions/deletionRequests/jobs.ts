import type { CronJob } from "../cron/jobs";
import { executeDeletions } from "./executeDeletions";
import { purgeReceipts } from "./purgeReceipts";

/** The data-subject jobs of the Cron Worker (registered in functions/cron/jobs.ts). */
export const DSAR_JOBS: CronJob[] = [
  {
    name: "dsar-deletions",
    run: ({ db, now, deadLetters }) => executeDeletions(db, now, { deadLetters }),
  },
  { name: "dsar-receipt-purge", run: ({ db, now }) => purgeReceipts(db, now) },
];
