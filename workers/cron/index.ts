import { jobsFor } from "../../functions/cron/jobs";
import { objectStoreFor } from "../../functions/storage/config";
import { closeDb, createDb } from "../../shared/db";
import { createLogger } from "../../shared/logger";
import { parseEnv } from "../common/parseEnv";
import { cronVarsSchema } from "./env";

const log = createLogger({ worker: "cron" });

/**
 * The Cron Trigger. `now` is the trigger's scheduled time, so tests inject the clock by scheduling a run
 * at any instant. Jobs run one after another; one job failing does not stop the others, and the run
 * then fails as a whole so Cloudflare records it.
 */
export default {
  async scheduled(
    controller: ScheduledController,
    env: CronBindings,
    execution: ExecutionContext,
  ): Promise<void> {
    const vars = parseEnv(cronVarsSchema, env);
    const now = new Date(controller.scheduledTime);
    const db = createDb({
      databaseUrl: vars.DATABASE_URL,
      wsProxy: vars.NEON_WS_PROXY,
      role: "layers_maintenance",
    });
    const stores = {
      archive: vars.ARCHIVE_BUCKET ? objectStoreFor(vars, vars.ARCHIVE_BUCKET) : undefined,
      deadLetters: objectStoreFor(vars, vars.DEAD_LETTER_BUCKET),
      media: objectStoreFor(vars, vars.MEDIA_BUCKET),
      exports: objectStoreFor(vars, vars.EXPORT_BUCKET),
    };
    const queues = {
      eventsQueue: env.EVENTS_QUEUE,
      relayDeadLetterQueue: env.RELAY_DLQ,
      webhooksQueue: env.WEBHOOKS_QUEUE,
    };
    const failed: string[] = [];
    try {
      for (const job of jobsFor(controller.cron)) {
        const started = Date.now();
        try {
          const result = await job.run({ db, now, vars, ...stores, ...queues });
          log.info("cron job done", { job: job.name, ...result, ms: Date.now() - started });
        } catch (error) {
          failed.push(job.name);
          log.error("cron job failed", { job: job.name, error, ms: Date.now() - started });
        }
      }
    } finally {
      // Not awaited: closing waits for connections a dead socket may never give back, and the run's
      // outcome is already known.
      execution.waitUntil(closeDb(db));
    }
    if (failed.length > 0) throw new Error(`cron jobs failed: ${failed.join(", ")}`);
  },
};
