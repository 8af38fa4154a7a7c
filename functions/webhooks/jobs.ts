import type { CronJob } from "../cron/jobs";
import { dispatchWebhooks, purgeWebhookLog } from "./dispatch";

/** The webhooks' Cron work: the outbox and due retries every minute; the 30-day log purge. */
export const WEBHOOK_JOBS: CronJob[] = [
  {
    name: "webhooks-dispatch",
    everyMinute: true,
    async run({ db, now, vars, webhooksQueue }) {
      if (!webhooksQueue) return { counts: { webhook_messages: 0, webhook_deliveries: 0, retries: 0 } };
      const result = await dispatchWebhooks(db, webhooksQueue, {
        now,
        leaseSeconds: vars.WEBHOOK_LEASE_SECONDS,
        budget: vars.WEBHOOK_DISPATCH_BUDGET,
      });
      return {
        counts: {
          webhook_messages: result.messages,
          webhook_deliveries: result.deliveries,
          retries: result.retries,
        },
        more: result.more,
      };
    },
  },
  {
    name: "webhooks-log-purge",
    async run({ db, now, vars }) {
      const result = await purgeWebhookLog(db, now, {
        chunk: vars.RETENTION_CHUNK_SIZE,
        budget: vars.RETENTION_ROW_BUDGET,
      });
      return {
        counts: { webhook_attempts: result.attempts, webhook_messages: result.messages },
        more: result.more,
      };
    },
  },
];
