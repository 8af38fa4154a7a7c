import { deadLetterEnvelope } from "../../functions/deadLetters/fromQueue";
import { parseKeyring } from "../../functions/destinations/crypto";
import { retryDelaySeconds } from "../../functions/events/retryDelay";
import { DestinationCache } from "../../functions/relay/destinationCache";
import { relayMessages } from "../../functions/relay/relayBatch";
import { defaultSendDeps } from "../../functions/relay/send";
import { closeDb, createDb } from "../../shared/db";
import { createLogger } from "../../shared/logger";
import type { RelayMessage } from "../../shared/schemas/relay";
import { checkRelayMessage } from "../../shared/schemas/shapeCheck";
import { parseEnv } from "../common/parseEnv";
import { relayVarsSchema } from "./env";

const log = createLogger({ worker: "relay" });
/** Per isolate: decrypted tokens reused between batches while their rows are unchanged (see the class). */
const destinations = new DestinationCache();

/**
 * Consumer of the "relay" queue. Each message is one batch for one destination, judged on its own (the
 * database work is shared per queue batch, see relayMessages): delivered or refused (ack), failed for now
 * (retry with backoff; after max_retries Cloudflare moves it to layers-relay-dlq, which the dead-letter
 * Worker records), malformed (put on the dead-letter queue at once: retrying cannot fix it). Logs carry
 * ids and counts only, never a token or a payload.
 */
export default {
  async queue(batch: MessageBatch<unknown>, env: RelayBindings, execution: ExecutionContext): Promise<void> {
    const vars = parseEnv(relayVarsSchema, env);
    const db = createDb({
      databaseUrl: vars.DATABASE_URL,
      wsProxy: vars.NEON_WS_PROXY,
      role: "layers_relay",
      stepTimeoutMs: vars.DATABASE_TIMEOUT_MS,
    });
    try {
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
        destinations,
      };
      const valid: { message: Message<unknown>; body: RelayMessage }[] = [];
      for (const message of batch.messages) {
        const checked = checkRelayMessage(message.body);
        if (checked.ok) valid.push({ message, body: checked.message });
        else {
          log.error("malformed relay message sent to the dead-letter queue", {
            messageId: message.id,
            issues: checked.issues.slice(0, 5),
          });
          try {
            await env.RELAY_DLQ.send(deadLetterEnvelope("malformed", message.body), { contentType: "json" });
            message.ack();
          } catch {
            message.retry({ delaySeconds: retryDelaySeconds(message.attempts, 5, 600) });
          }
        }
      }
      const results = await relayMessages(
        ctx,
        valid.map((v) => ({ message: v.body, attempts: v.message.attempts })),
      );
      results.forEach((result, index) => {
        const { message, body: m } = valid[index] as (typeof valid)[number];
        // Every line about this message carries its ids.
        const messageLog = log.child({
          batchId: m.batchId,
          projectId: m.projectId,
          destination: m.destination,
        });
        if (result.status === "rejected") {
          // Our side failed (database, keyring): retry like a platform outage.
          const delaySeconds = retryDelaySeconds(
            message.attempts,
            vars.RETRY_BASE_DELAY_SECONDS,
            vars.RETRY_MAX_DELAY_SECONDS,
          );
          messageLog.error("relay batch failed on our side, will retry", {
            delaySeconds,
            error: result.reason,
          });
          message.retry({ delaySeconds });
        } else if (result.value.kind === "ack") {
          messageLog.info("relay batch done", { status: result.value.status, sent: result.value.sent });
          message.ack();
        } else {
          messageLog.warn("relay batch will retry", {
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
