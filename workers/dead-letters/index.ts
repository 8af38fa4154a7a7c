import { receiveEventsDeadLetter, receiveRelayDeadLetter } from "../../functions/deadLetters/receive";
import { objectStoreFor } from "../../functions/storage/config";
import { createDb } from "../../shared/db";
import { createLogger } from "../../shared/logger";
import { parseEnv } from "../common/parseEnv";
import { deadLetterVarsSchema } from "./env";

const log = createLogger({ worker: "dead-letters" });

/** The relay's dead-letter queue (wrangler.toml); every other batch comes from layers-events-dlq. */
const RELAY_DLQ = "layers-relay-dlq";

/**
 * Consumer of both dead-letter queues (functions/deadLetters/receive.ts decides per message). Logs carry
 * ids, reasons and counts only: never an event, a token or an error text that could quote one.
 */
export default {
  async queue(batch: MessageBatch<unknown>, env: DeadLetterBindings, ctx: ExecutionContext): Promise<void> {
    const vars = parseEnv(deadLetterVarsSchema, env);
    const store = objectStoreFor(vars, vars.DEAD_LETTER_BUCKET);
    if (!store) throw new Error("dead-letter storage is not configured");
    const db = createDb({
      databaseUrl: vars.DATABASE_URL,
      wsProxy: vars.NEON_WS_PROXY,
      role: "layers_relay",
    });
    try {
      for (const message of batch.messages) {
        const queued = { id: message.id, body: message.body, attempts: message.attempts };
        const decision =
          batch.queue === RELAY_DLQ
            ? await receiveRelayDeadLetter(
                { db, store, recordAttempts: vars.RELAY_RECORD_ATTEMPTS },
                queued,
                new Date(),
              )
            : await receiveEventsDeadLetter(store, queued, new Date());
        const messageLog = log.child({
          queue: batch.queue,
          messageId: message.id,
          attempts: message.attempts,
        });
        if (decision.kind === "ack") {
          messageLog.warn("dead letter kept", { outcome: decision.outcome });
          message.ack();
        } else {
          messageLog.error("dead letter not kept yet, will retry", {
            delaySeconds: decision.delaySeconds,
            error: decision.error,
          });
          message.retry({ delaySeconds: decision.delaySeconds });
        }
      }
    } finally {
      // Never awaited here: tearing down a pool whose connection died must not hold the queue.
      ctx.waitUntil(db.destroy().catch(() => {}));
    }
  },
} satisfies ExportedHandler<DeadLetterBindings, unknown>;
