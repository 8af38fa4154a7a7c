import type { Db } from "../../shared/db";
import type { Logger } from "../../shared/logger";
import { eventsMessageSchema } from "../../shared/schemas/queue";
import { deadLetterEnvelope } from "../deadLetters/fromQueue";
import type { QueueDecision, QueuedMessage } from "../deadLetters/receive";
import { enabledRelayTargets, type RelayQueue } from "../relay/enqueueRelays";
import { relayInsertedEvents } from "../relay/relayInserted";
import { persistIsolating } from "./persistIsolating";
import { retryDelaySeconds } from "./retryDelay";

/** The part of the dead-letter queue's binding the consumer uses. */
export interface DeadLetterQueue {
  send(body: unknown, options?: { contentType?: "json" }): Promise<unknown>;
}

export interface EventsMessageDeps {
  db: Db;
  relayQueue: RelayQueue;
  deadLetterQueue: DeadLetterQueue;
  log: Logger;
  retryBaseSeconds: number;
  retryMaxSeconds: number;
}

/**
 * The consumer's decision for one message of the "events" queue, as a plain function (the Worker only maps
 * it to ack/retry):
 *  - malformed (fails the contract): put on the dead-letter queue at once; retrying cannot fix it;
 *  - unknown project (or one from another org): dropped with a logged reason;
 *  - events the database refuses as data (persistIsolating): those go to the dead-letter queue with the
 *    SQLSTATE, the rest are stored;
 *  - any other database error: retried with exponential backoff (wrangler.toml: about two hours of attempts
 *    before Cloudflare moves it to the dead-letter queue);
 *  - stored: the new events are queued for the project's relays, then acked. Redelivery is harmless:
 *    persistEvents ignores events it already has (and so they are not relayed again).
 */
export async function handleEventsMessage(
  deps: EventsMessageDeps,
  message: QueuedMessage,
): Promise<QueueDecision> {
  const { log } = deps;
  const retry = (error: unknown): QueueDecision => ({
    kind: "retry",
    delaySeconds: retryDelaySeconds(message.attempts, deps.retryBaseSeconds, deps.retryMaxSeconds),
    error,
  });
  const parsed = eventsMessageSchema.safeParse(message.body);
  if (!parsed.success) {
    log.error("malformed message sent to the dead-letter queue", {
      messageId: message.id,
      issues: parsed.error.issues.slice(0, 5).map((i) => `${i.path.join(".")}: ${i.message}`),
    });
    try {
      await deps.deadLetterQueue.send(deadLetterEnvelope("malformed", message.body), { contentType: "json" });
      return { kind: "ack", outcome: "dead-lettered (malformed)" };
    } catch (error) {
      return retry(error);
    }
  }
  const body = parsed.data;
  const { orgId, projectId } = body;
  try {
    const targets = await enabledRelayTargets(deps.db, orgId, projectId);
    const result = await persistIsolating(deps.db, body);
    if (!result.projectFound) {
      log.warn("message dropped: unknown project", { messageId: message.id, orgId, projectId });
      return { kind: "ack", outcome: "dropped (unknown project)" };
    }
    for (const refused of result.refused) {
      // Only the refused events; the rest of the message is stored. The SQLSTATE, never the error text.
      await deps.deadLetterQueue.send(
        deadLetterEnvelope("data_error", { ...body, events: refused.events }, refused.code),
        { contentType: "json" },
      );
      log.error("events refused by the database, dead-lettered", {
        messageId: message.id,
        projectId,
        code: refused.code,
        events: refused.events.length,
      });
    }
    const { received, inserted } = result;
    log.info("events persisted", { messageId: message.id, projectId, received, inserted });
    // Persistence never waits on a platform: this only enqueues (see relayInserted for retries).
    const relayed = await relayInsertedEvents(deps.relayQueue, targets, body, result, message.attempts);
    if (relayed.messages > 0) log.info("events queued for relay", { messageId: message.id, ...relayed });
    return { kind: "ack", outcome: "stored" };
  } catch (error) {
    return retry(error);
  }
}
