import type { CronJob } from "../cron/jobs";
import { tendDeadLetters } from "./tend";

/** Objects the dead-letter job looks at per run. */
const TEND_BUDGET = 1_000;

/** The Cron Worker's care of dead letters: redrive while the database answers, expiry after 30 days. */
export const DEAD_LETTER_JOBS: CronJob[] = [
  {
    name: "dead-letters",
    async run({ db, now, deadLetters, eventsQueue, relayDeadLetterQueue }) {
      if (!deadLetters || !eventsQueue || !relayDeadLetterQueue) {
        const counts: Record<string, number> = { storage_configured: 0 };
        return { counts };
      }
      const result = await tendDeadLetters({
        db,
        store: deadLetters,
        eventsQueue,
        relayDeadLetterQueue,
        now,
        budget: TEND_BUDGET,
      });
      return { counts: { ...result.counts }, more: result.more };
    },
  },
];
