import { persistEvents } from "../../functions/events/persistEvents";
import { retryDelaySeconds } from "../../functions/events/retryDelay";
import { enabledRelayTargets } from "../../functions/relay/enqueueRelays";
import { relayInsertedEvents } from "../../functions/relay/relayInserted";
import { closeDb, createDb } from "../../shared/db";
import { createLogger } from "../../shared/logger";
import { eventsMessageSchema } from "../../shared/schemas/queue";
import { type ConsumerBindings, consumerVarsSchema } from "./env";

const log = createLogger({ worker: "consumer" });

/**
 * Consumer of the "events" queue. Each message is judged and acknowledged on its own:
 *  - malformed (fails the zod contract): sent to the dead-letter queue at once, retrying cannot fix it;
 *  - unknown project (or one from another org): dropped with a logged reason;
 *  - database error: retried with exponential backoff; after max_retries Cloudflare moves it to the DLQ;
 *  - stored: the new events are queued for the project's relays, then acked. Redelivery is harmless,
 *    persistEvents ignores events it already has (and so they are not relayed again).
 */
export default {
  async queue(
    batch: MessageBatch<unknown>,
    env: ConsumerBindings,
    execution: ExecutionContext,
  ): Promise<void> {
    const vars = consumerVarsSchema.parse(env);
    const db = createDb({
      databaseUrl: vars.DATABASE_URL,
      wsProxy: vars.NEON_WS_PROXY,
      stepTimeoutMs: vars.DATABASE_TIMEOUT_MS,
    });
    try {
      await Promise.all(
        batch.messages.map(async (message) => {
          const parsed = eventsMessageSchema.safeParse(message.body);
          if (!parsed.success) {
            log.error("malformed message sent to dead-letter queue", {
              messageId: message.id,
              issues: parsed.error.issues.slice(0, 5).map((i) => `${i.path.join(".")}: ${i.message}`),
            });
            try {
              await env.EVENTS_DLQ.send(message.body, { contentType: "json" });
              message.ack();
            } catch (error) {
              log.error("dead-letter send failed", { messageId: message.id, error });
              message.retry();
            }
            return;
          }
          const { orgId, projectId } = parsed.data;
          try {
            const targets = await enabledRelayTargets(db, orgId, projectId);
            const result = await persistEvents(db, parsed.data);
            if (result.projectFound) {
              const { received, inserted } = result;
              log.info("events persisted", { messageId: message.id, projectId, received, inserted });
              // Persistence never waits on a platform: this only enqueues (see relayInserted for retries).
              const relayed = await relayInsertedEvents(
                env.RELAY_QUEUE,
                targets,
                parsed.data,
                result,
                message.attempts,
              );
              if (relayed.messages > 0)
                log.info("events queued for relay", { messageId: message.id, ...relayed });
            } else {
              log.warn("message dropped: unknown project", { messageId: message.id, orgId, projectId });
            }
            message.ack();
          } catch (error) {
            const delaySeconds = retryDelaySeconds(
              message.attempts,
              vars.RETRY_BASE_DELAY_SECONDS,
              vars.RETRY_MAX_DELAY_SECONDS,
            );
            log.error("persist failed, will retry", {
              messageId: message.id,
              attempts: message.attempts,
              delaySeconds,
              error,
            });
            message.retry({ delaySeconds });
          }
        }),
      );
    } finally {
      // Not awaited: every message is decided by now, and closing waits for connections a dead socket
      // may never give back; an await here would hold the batch, and the queue, forever.
      execution.waitUntil(closeDb(db));
    }
  },
} satisfies ExportedHandler<ConsumerBindings, unknown>;
