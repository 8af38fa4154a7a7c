import { handleEventsMessages } from "../../functions/events/handleEventsMessage";
import { closeDb, createDb } from "../../shared/db";
import { createLogger } from "../../shared/logger";
import { parseEnv } from "../common/parseEnv";
import { consumerVarsSchema } from "./env";

const log = createLogger({ worker: "consumer" });

/**
 * Consumer of the "events" queue: each message is decided on its own by handleEventsMessages (stored, dropped,
 * dead-lettered or retried with backoff; a project's messages are stored together); this only maps the
 * decisions to ack or retry.
 */
export default {
  async queue(
    batch: MessageBatch<unknown>,
    env: ConsumerBindings,
    execution: ExecutionContext,
  ): Promise<void> {
    const vars = parseEnv(consumerVarsSchema, env);
    const db = createDb({
      databaseUrl: vars.DATABASE_URL,
      wsProxy: vars.NEON_WS_PROXY,
      role: "layers_consumer",
      stepTimeoutMs: vars.DATABASE_TIMEOUT_MS,
    });
    const deps = {
      db,
      relayQueue: env.RELAY_QUEUE,
      deadLetterQueue: env.EVENTS_DLQ,
      log,
      retryBaseSeconds: vars.RETRY_BASE_DELAY_SECONDS,
      retryMaxSeconds: vars.RETRY_MAX_DELAY_SECONDS,
    };
    try {
      const decisions = await handleEventsMessages(
        deps,
        batch.messages.map((m) => ({ id: m.id, body: m.body, attempts: m.attempts })),
      );
      batch.messages.forEach((message, index) => {
        const decision = decisions[index];
        if (decision?.kind === "ack") {
          message.ack();
          return;
        }
        // A decision is made for every message; none would only be a bug, and a retry is the safe answer.
        const delaySeconds = decision?.delaySeconds ?? vars.RETRY_BASE_DELAY_SECONDS;
        log.error("persist failed, will retry", {
          messageId: message.id,
          attempts: message.attempts,
          delaySeconds,
          error: decision?.error,
        });
        message.retry({ delaySeconds });
      });
    } finally {
      // Not awaited: every message is decided by now, and closing waits for connections a dead socket
      // may never give back; an await here would hold the batch, and the queue, forever.
      execution.waitUntil(closeDb(db));
    }
  },
} satisfies ExportedHandler<ConsumerBindings, unknown>;
