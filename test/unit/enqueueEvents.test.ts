import { describe, expect, it } from "vitest";
import { type EventsQueue, enqueueEvents } from "../../functions/ingest/enqueueEvents";
import { QUEUE_LIMITS } from "../../shared/limits";
import { type EventsMessage, eventsMessageSchema, type QueuedEvent } from "../../shared/schemas/queue";

const ENVELOPE = {
  orgId: "org_7kR2mQ9xVb3nLp4sT8wY",
  projectId: "proj_3HfN8cWq2ZsK6dVt9mRx",
  receivedAt: "2025-03-10T12:00:00.000Z",
};

const bytesOf = (value: unknown) => new TextEncoder().encode(JSON.stringify(value)).byteLength;

/** Records every sendBatch call; optionally fails a given call (1-based). */
class RecordingQueue implements EventsQueue {
  readonly calls: MessageSendRequest<EventsMessage>[][] = [];
  constructor(private readonly failOnCall?: number) {}

  async sendBatch(messages: Iterable<MessageSendRequest<EventsMessage>>): Promise<void> {
    const batch = [...messages];
    this.calls.push(batch);
    if (this.calls.length === this.failOnCall) throw new Error("queue unavailable");
  }

  get messages(): MessageSendRequest<EventsMessage>[] {
    return this.calls.flat();
  }
}

function event(i: number, padding = 0): QueuedEvent {
  return {
    eventId: `evt-${String(i).padStart(5, "0")}`,
    name: "screen_view",
    userId: `user-${i % 17}`,
    timestamp: new Date(Date.UTC(2025, 2, 10, 11, 0, 0, i)).toISOString(),
    appId: "com.example.app",
    os: "iOS",
    osVersion: "17.4",
    deviceModel: "iPhone",
    browser: null,
    country: "DE",
    region: "Bavaria",
    emailSha256: null,
    phoneSha256: null,
    properties: padding > 0 ? { screen: "home", blob: "x".repeat(padding) } : { screen: "home" },
    consentAds: null,
  };
}

/** The invariants every enqueue must keep, whatever the input. */
function expectWithinQueueLimits(queue: RecordingQueue, input: QueuedEvent[]) {
  for (const call of queue.calls) {
    expect(call.length).toBeGreaterThan(0);
    expect(call.length).toBeLessThanOrEqual(QUEUE_LIMITS.maxBatchMessages);
    expect(call.reduce((sum, m) => sum + bytesOf(m.body), 0)).toBeLessThanOrEqual(QUEUE_LIMITS.maxBatchBytes);
  }
  for (const message of queue.messages) {
    expect(bytesOf(message.body)).toBeLessThanOrEqual(QUEUE_LIMITS.maxMessageBytes);
    expect(message.contentType).toBe("json");
    expect(eventsMessageSchema.safeParse(message.body).success).toBe(true);
    expect(message.body).toMatchObject({ v: 1, ...ENVELOPE });
  }
  // Every event exactly once, in the order given.
  const delivered = queue.messages.flatMap((m) => m.body.events);
  expect(delivered.map((e) => e.eventId)).toEqual(input.map((e) => e.eventId));
  expect(delivered).toEqual(input);
}

describe("enqueueEvents", () => {
  it("50 small events → one message in one sendBatch call", async () => {
    const queue = new RecordingQueue();
    const input = Array.from({ length: 50 }, (_, i) => event(i));
    const result = await enqueueEvents(queue, ENVELOPE, input);
    expect(result).toEqual({ messages: 1, sendBatchCalls: 1 });
    expect(queue.calls).toHaveLength(1);
    expect(queue.messages).toHaveLength(1);
    expectWithinQueueLimits(queue, input);
  });

  it("500 events of ~1 KB are packed densely within every queue limit", async () => {
    const queue = new RecordingQueue();
    const input = Array.from({ length: 500 }, (_, i) => event(i, 800));
    for (const e of input) expect(bytesOf(e)).toBeGreaterThan(1000);

    const result = await enqueueEvents(queue, ENVELOPE, input);

    expectWithinQueueLimits(queue, input);
    expect(result).toEqual({ messages: queue.messages.length, sendBatchCalls: queue.calls.length });
    // A few queue operations, not one per event: ~500 KB fits in 5 messages of ≤ 120 KB.
    const totalBytes = input.reduce((sum, e) => sum + bytesOf(e), 0);
    expect(queue.messages.length).toBe(Math.ceil(totalBytes / (QUEUE_LIMITS.maxMessageBytes - 2048)));
    expect(queue.calls.length).toBeLessThanOrEqual(3);
    // Every message but the last is nearly full.
    for (const message of queue.messages.slice(0, -1)) {
      expect(bytesOf(message.body)).toBeGreaterThan(QUEUE_LIMITS.maxMessageBytes - 2048);
    }
  });

  it.each([
    ["500 events of the maximum event size (32 KB)", 500, () => 32 * 1024 - 600],
    ["500 events of mixed sizes", 500, (i: number) => (i * 7919) % (30 * 1024)],
    ["one event", 1, () => 100],
  ])("%s stay within every queue limit, none lost or duplicated", async (_label, count, padding) => {
    const queue = new RecordingQueue();
    const input = Array.from({ length: count }, (_, i) => event(i, padding(i)));
    const result = await enqueueEvents(queue, ENVELOPE, input);
    expectWithinQueueLimits(queue, input);
    expect(result).toEqual({ messages: queue.messages.length, sendBatchCalls: queue.calls.length });
  });

  it("multi-byte characters are measured in UTF-8 bytes", async () => {
    const queue = new RecordingQueue();
    // 2,000 × "€" is 2,000 UTF-16 units but 6,000 bytes.
    const input = Array.from({ length: 100 }, (_, i) => ({
      ...event(i),
      properties: { text: "€".repeat(2000) },
    }));
    await enqueueEvents(queue, ENVELOPE, input);
    expectWithinQueueLimits(queue, input);
  });

  it("no events → no queue operation", async () => {
    const queue = new RecordingQueue();
    expect(await enqueueEvents(queue, ENVELOPE, [])).toEqual({ messages: 0, sendBatchCalls: 0 });
    expect(queue.calls).toHaveLength(0);
  });

  it("a rejecting queue makes the promise reject (so the edge does not answer 202)", async () => {
    const queue = new RecordingQueue(1);
    await expect(enqueueEvents(queue, ENVELOPE, [event(1)])).rejects.toThrow("queue unavailable");
  });

  it("a failure on a later sendBatch call rejects too, and nothing more is sent after it", async () => {
    const queue = new RecordingQueue(2);
    const input = Array.from({ length: 500 }, (_, i) => event(i, 800));
    await expect(enqueueEvents(queue, ENVELOPE, input)).rejects.toThrow("queue unavailable");
    expect(queue.calls).toHaveLength(2);
  });
});
