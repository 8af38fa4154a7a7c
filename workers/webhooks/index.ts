import { parseKeyring } from "../../functions/destinations/crypto";
import { retryDelaySeconds } from "../../functions/events/retryDelay";
import { deliverWebhooks } from "../../functions/webhooks/deliver";
import { type WebhookQueueMessage, webhookQueueMessageSchema } from "../../functions/webhooks/queueMessage";
import { closeDb, createDb } from "../../shared/db";
import { createLogger } from "../../shared/logger";
import { parseEnv } from "../common/parseEnv";
import { webhooksVarsSchema } from "./env";

const log = createLogger({ worker: "webhooks" });

/**
 * Consumer of the "layers-webhooks" queue. Each message is one attempt at one delivery; the batch's are
 * sent concurrently and share one claim and one record transaction per org (functions/webhooks/deliver.ts). Whatever the receiver does is recorded and the message
 * acked (the retry lives in Postgres, see functions/webhooks/deliver.ts); only our side failing (database,
 * keyring) retries the message. Malformed messages are acked and logged: nothing could ever deliver them.
 * Logs carry ids, status codes and error codes, never a URL's secret, a payload or a signing secret.
 */
export default {
  async queue(
    batch: MessageBatch<unknown>,
    env: WebhooksBindings,
    execution: ExecutionContext,
  ): Promise<void> {
    const vars = parseEnv(webhooksVarsSchema, env);
    const db = createDb({
      databaseUrl: vars.DATABASE_URL,
      wsProxy: vars.NEON_WS_PROXY,
      role: "layers_webhooks",
      stepTimeoutMs: vars.DATABASE_TIMEOUT_MS,
    });
    try {
      const options = {
        keyring: parseKeyring(env),
        schedule: vars.WEBHOOK_RETRY_SCHEDULE_SECONDS,
        leaseSeconds: vars.WEBHOOK_LEASE_SECONDS,
        timeoutMs: vars.WEBHOOK_TIMEOUT_MS,
        concurrentSends: vars.WEBHOOK_CONCURRENT_SENDS,
        allowLocalHttp: vars.WEBHOOK_ALLOW_LOCAL_HTTP === "true",
        now: () => new Date(),
      };
      const valid: { message: Message<unknown>; body: WebhookQueueMessage }[] = [];
      for (const message of batch.messages) {
        const parsed = webhookQueueMessageSchema.safeParse(message.body);
        if (parsed.success) valid.push({ message, body: parsed.data });
        else {
          log.error("malformed webhooks message dropped", { queueMessageId: message.id });
          message.ack();
        }
      }
      const results = await deliverWebhooks(
        db,
        valid.map((v) => v.body),
        options,
      );
      results.forEach((result, i) => {
        const { message, body: m } = valid[i] as (typeof valid)[number];
        const ids = { orgId: m.orgId, messageId: m.messageId, endpointId: m.endpointId };
        if (result.status === "rejected") {
          const delaySeconds = retryDelaySeconds(message.attempts, 5, 300);
          log.error("webhook delivery failed on our side, will retry", {
            ...ids,
            delaySeconds,
            error: result.reason,
          });
          message.retry({ delaySeconds });
          return;
        }
        const outcome = result.value;
        if (outcome.kind === "failed" || outcome.kind === "retry") {
          log.warn("webhook attempt failed", { ...ids, ...outcome });
        } else if (outcome.kind !== "stale") {
          log.info("webhook attempt done", { ...ids, ...outcome });
        }
        message.ack();
      });
    } finally {
      // Not awaited: every message is decided by now, and closing waits for connections a dead socket
      // may never give back.
      execution.waitUntil(closeDb(db));
    }
  },
} satisfies ExportedHandler<WebhooksBindings, unknown>;
