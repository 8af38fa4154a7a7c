import type { Db } from "../../shared/db";
import { relayMessageSchema } from "../../shared/schemas/relay";
import { retryDelaySeconds } from "../events/retryDelay";
import { relayDeadLetter } from "../relay/relayBatch";
import type { ObjectStore } from "../storage/objectStore";
import { deadLetterOf, isEventsMessage } from "./fromQueue";
import { putDeadLetter } from "./store";

// The dead-letter queues' consumers, as plain decisions (ack, or retry after a delay) so they are the same
// wherever they run and can be tested directly.

export type QueueDecision =
  | { kind: "ack"; outcome: string }
  | { kind: "retry"; delaySeconds: number; error: unknown };

export interface QueuedMessage {
  id: string;
  body: unknown;
  attempts: number;
}

/** Storage failing: retried with 5 s, 10 s … capped at 1 h (the queue allows 100 attempts: days). */
const storageRetry = (attempts: number, error: unknown): QueueDecision => ({
  kind: "retry",
  delaySeconds: retryDelaySeconds(attempts, 5, 3600),
  error,
});

/** An events message that died (or its refused events): kept in object storage, nowhere else. */
export async function receiveEventsDeadLetter(
  store: ObjectStore,
  message: QueuedMessage,
  now: Date,
): Promise<QueueDecision> {
  const letter = deadLetterOf("events", message.body, message.id, now, isEventsMessage);
  try {
    await putDeadLetter(store, letter);
    return { kind: "ack", outcome: `stored (${letter.reason})` };
  } catch (error) {
    return storageRetry(message.attempts, error);
  }
}

/**
 * A relay batch that died: recorded in the database (relay_dead_letters, its delivery row, the destination
 * marked failing) so the partner API lists and replays it. While the database refuses, retried with backoff
 * (5 s doubling, capped at 10 minutes); after `recordAttempts` tries (about an hour) it goes to object
 * storage, from where the Cron Worker sends it back to be recorded once the database answers.
 */
export async function receiveRelayDeadLetter(
  deps: { db: Db; store: ObjectStore; recordAttempts: number },
  message: QueuedMessage,
  now: Date,
): Promise<QueueDecision> {
  const parsed = relayMessageSchema.safeParse(message.body);
  if (parsed.success) {
    try {
      await relayDeadLetter(deps.db, parsed.data, now);
      return { kind: "ack", outcome: "recorded" };
    } catch (error) {
      if (message.attempts < deps.recordAttempts) {
        return { kind: "retry", delaySeconds: retryDelaySeconds(message.attempts, 5, 600), error };
      }
    }
  }
  const letter = deadLetterOf(
    "relay",
    message.body,
    message.id,
    now,
    (m) => relayMessageSchema.safeParse(m).success,
  );
  try {
    await putDeadLetter(deps.store, letter);
    return { kind: "ack", outcome: `stored (${letter.reason})` };
  } catch (error) {
    return storageRetry(message.attempts, error);
  }
}
