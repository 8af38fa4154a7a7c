import type { CronJob } from "../cron/jobs";
import { purgeDeliveries } from "./deliveries";

/** The relay's Cron work: the delivery log and dead letters keep 30 days. */
export const RELAY_JOBS: CronJob[] = [
  {
    name: "relay-deliveries-purge",
    async run({ db, now }) {
      const { deliveries, deadLetters, more } = await purgeDeliveries(db, now);
      return { counts: { relay_deliveries: deliveries, relay_dead_letters: deadLetters }, more };
    },
  },
];
