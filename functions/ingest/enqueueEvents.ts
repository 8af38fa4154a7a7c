import { QUEUE_LIMITS } from "../../shared/limits";
import type { EventsMessage, QueuedEvent } from "../../shared/schemas/queue";

/** The part of a Queue binding we use; the Worker passes its real binding, tests may pass another. */
export interface EventsQueue {
  sendBatch(messages: Iterable<MessageSendRequest<EventsMessage>>): Promise<unknown>;
}

export interface EnqueueResult {
  messages: number;
  sendBatchCalls: number;
}

const encoder = new TextEncoder();
const ENVELOPE_BYTES = 256; // v, orgId, projectId, receivedAt and the JSON punctuation around them

/**
 * Packs events into as few queue messages as fit (each ≤ 120 KB) and sends them with as few sendBatch
 * calls as the limits allow (≤ 100 messages and ≤ 250 KB per call). Resolves only once the queue has
 * accepted every message, so the edge answers 202 only for events that are durably queued.
 */
export async function enqueueEvents(
  queue: EventsQueue,
  envelope: Omit<EventsMessage, "v" | "events">,
  events: QueuedEvent[],
): Promise<EnqueueResult> {
  if (events.length === 0) return { messages: 0, sendBatchCalls: 0 };
  // The common case (an SDK batch of tens of events) fits one message: size it once, send once.
  // Three bytes per UTF-16 unit bound the UTF-8 size, so encoding is needed only near the limit.
  const json = JSON.stringify(events);
  const fits = (bytes: number) => ENVELOPE_BYTES + bytes <= QUEUE_LIMITS.maxMessageBytes;
  if (fits(json.length * 3) || fits(encoder.encode(json).byteLength)) {
    await queue.sendBatch([{ body: { v: 1, ...envelope, events }, contentType: "json" }]);
    return { messages: 1, sendBatchCalls: 1 };
  }

  const messages: { body: EventsMessage; bytes: number }[] = [];
  let current: QueuedEvent[] = [];
  let currentBytes = ENVELOPE_BYTES;
  const flush = () => {
    if (current.length === 0) return;
    messages.push({ body: { v: 1, ...envelope, events: current }, bytes: currentBytes });
    current = [];
    currentBytes = ENVELOPE_BYTES;
  };
  for (const event of events) {
    const bytes = encoder.encode(JSON.stringify(event)).byteLength + 1;
    if (currentBytes + bytes > QUEUE_LIMITS.maxMessageBytes) flush();
    current.push(event);
    currentBytes += bytes;
  }
  flush();

  let sendBatchCalls = 0;
  let batch: MessageSendRequest<EventsMessage>[] = [];
  let batchBytes = 0;
  const send = async () => {
    if (batch.length === 0) return;
    await queue.sendBatch(batch);
    sendBatchCalls += 1;
    batch = [];
    batchBytes = 0;
  };
  for (const message of messages) {
    if (
      batch.length === QUEUE_LIMITS.maxBatchMessages ||
      batchBytes + message.bytes > QUEUE_LIMITS.maxBatchBytes
    ) {
      await send();
    }
    batch.push({ body: message.body, contentType: "json" });
    batchBytes += message.bytes;
  }
  await send();
  return { messages: messages.length, sendBatchCalls };
}
