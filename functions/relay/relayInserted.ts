import type { EventsMessage } from "../../shared/schemas/queue";
import type { PersistResult } from "../events/persistEvents";
import { buildRelayMessages, enqueueRelayMessages, type RelayQueue, type RelayTarget } from "./enqueueRelays";

/**
 * After persisting an events message: queue the events for each enabled destination of the project
 * (`targets`, read by the consumer alongside persisting: a failed read or a failed send retries the
 * message, and the retry takes the branch below).
 *
 * Which events: those this delivery stored (persistEvents' insertedEventIds), so a duplicate delivery of a
 * message relays nothing. One exception closes a gap: on a redelivery after a failure (attempts > 1) the
 * failed attempt may have committed the events and then failed before or while enqueueing, and the new
 * attempt would see nothing new and relay nothing, losing those conversions. So a retried message relays
 * every event that passed persistEvents' erasure/suppression filter (keptEventIds: stored now or before),
 * never the raw message, so a user erased or suppressed meanwhile is not sent to a platform; Meta and TikTok drop a repeated event_id (48 h) and Apple records are upserts, so the
 * worst case is a repeat the platform discards, never a lost conversion.
 * Throws when the queue refuses: the consumer then retries the message (and takes the branch above).
 */
export async function relayInsertedEvents(
  queue: RelayQueue,
  targets: RelayTarget[],
  message: EventsMessage,
  persisted: Pick<PersistResult, "insertedEventIds" | "keptEventIds">,
  attempts: number,
): Promise<{ messages: number; events: number; destinations: number }> {
  const ids = new Set(attempts > 1 ? persisted.keptEventIds : persisted.insertedEventIds);
  if (ids.size === 0 || targets.length === 0) return { messages: 0, events: 0, destinations: 0 };
  const messages = buildRelayMessages(message, ids, targets, new Date());
  await enqueueRelayMessages(queue, messages);
  return {
    messages: messages.length,
    events: messages.reduce((sum, m) => sum + m.events.length, 0),
    destinations: targets.length,
  };
}
