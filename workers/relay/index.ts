import { parseKeyring } from "../../functions/destinations/crypto";
import { retryDelaySeconds } from "../../functions/events/retryDelay";
import { relayDeadLetter, relayMessages } from "../../functions/relay/relayBatch";
import { defaultSendDeps } from "../../functions/relay/send";
import { closeDb, createDb } from "../../shared/db";
import { createLogger } from "../../shared/logger";
import { type RelayMessage, relayMessageSchema } from "../../shared/schemas/relay";
import { type RelayBindings, relayVarsSchema } from "./env";

const log = createLogger({ worker: "relay" });

/** The dead-letter queue's name (wrangler.toml): its batches are stored for replay, not sent. */
const DLQ = "layers-relay-dlq";

/**
 * Consumer of the "relay" queue and its dead-letter queue. Each message is one batch for one destination,
 * judged on its own (the database work is shared per queue batch, see relayMessages): delivered or refused (ack), failed for now (retry with backoff), malformed (logged and
 * dropped: retrying cannot fix it). Logs carry ids and counts only, never a token or a payload.
 */
export default {
  async queue(batch: MessageBatch<unknown>, env: RelayBindings, execution: ExecutionContext): Promise<void> {
    const vars = relayVarsSchema.parse(env);
    const db = createDb({
      databaseUrl: vars.DATABASE_URL,
      wsProxy: vars.NEON_WS_PROXY,
      stepTimeoutMs: vars.DATABASE_TIMEOUT_MS,
    });
    try {
      if (batch.queue === DLQ) {
        for (const message of batch.messages) {
          const parsed = relayMessageSchema.safeParse(message.body);
          if (!parsed.success) {
            log.error("malformed relay dead letter dropped", { messageId: message.id });
            message.ack();
            continue;
          }
          try {
            await relayDeadLetter(db, parsed.data, new Date());
            log.warn("relay batch dead-lettered", {
              batchId: parsed.data.batchId,
              projectId: parsed.data.projectId,
              destination: parsed.data.destination,
              events: parsed.data.events.length,
            });
            message.ack();
          } catch (error) {
            log.error("storing a relay dead letter failed, will retry", {
              batchId: parsed.data.batchId,
              error,
            });
            message.retry({ delaySeconds: retryDelaySeconds(message.attempts, 5, 300) });
          }
        }
        return;
      }

      const ctx = {
        db,
        keyring: parseKeyring(env),
        endpoints: {
          metaApiBase: vars.META_API_BASE,
          tiktokApiBase: vars.TIKTOK_API_BASE,
          appleAdServicesUrl: vars.APPLE_ADSERVICES_URL,
          timeoutMs: vars.RELAY_TIMEOUT_MS,
          appleNotFoundRetryIntervalMs: vars.APPLE_NOT_FOUND_RETRY_MS,
        },
        deps: defaultSendDeps,
        retryBaseSeconds: vars.RETRY_BASE_DELAY_SECONDS,
        retryMaxSeconds: vars.RETRY_MAX_DELAY_SECONDS,
      };
      const valid: { message: Message<unknown>; body: RelayMessage }[] = [];
      for (const message of batch.messages) {
        const parsed = relayMessageSchema.safeParse(message.body);
        if (parsed.success) valid.push({ message, body: parsed.data });
        else {
          log.error("malformed relay message dropped", {
            messageId: message.id,
            issues: parsed.error.issues.slice(0, 5).map((i) => `${i.path.join(".")}: ${i.message}`),
          });
          message.ack();
        }
      }
      const results = await relayMessages(
        ctx,
        valid.map((v) => ({ message: v.body, attempts: v.message.attempts })),
      );
      results.forEach((result, index) => {
        const { message, body: m } = valid[index] as (typeof valid)[number];
        const ids = { batchId: m.batchId, projectId: m.projectId, destination: m.destination };
        if (result.status === "rejected") {
          // Our side failed (database, keyring): retry like a platform outage.
          const delaySeconds = retryDelaySeconds(
            message.attempts,
            vars.RETRY_BASE_DELAY_SECONDS,
            vars.RETRY_MAX_DELAY_SECONDS,
          );
          log.error("relay batch failed on our side, will retry", {
            ...ids,
            delaySeconds,
            error: result.reason,
          });
          message.retry({ delaySeconds });
        } else if (result.value.kind === "ack") {
          log.info("relay batch done", { ...ids, status: result.value.status, sent: result.value.sent });
          message.ack();
        } else {
          log.warn("relay batch will retry", {
            ...ids,
            attempts: message.attempts,
            delaySeconds: result.value.delaySeconds,
            error: result.value.error,
          });
          message.retry({ delaySeconds: result.value.delaySeconds });
        }
      });
    } finally {
      // Not awaited: every message is decided by now, and closing waits for connections a dead socket
      // may never give back; an await here would hold the batch, and the queue, forever.
      execution.waitUntil(closeDb(db));
    }
  },
} satisfies ExportedHandler<RelayBindings, unknown>;
