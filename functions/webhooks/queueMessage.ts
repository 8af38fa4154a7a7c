import { z } from "zod";

// One message on the "layers-webhooks" Queue: one delivery (one event to one endpoint) to attempt. It carries
// ids only — the payload and the secrets are read from the database by the webhooks Worker — and the number
// of attempts the delivery had when it was put on the Queue: the Worker attempts it only if that is still
// the count (a conditional update), so a message duplicated by the Queue, or put on it twice by the sweep,
// makes one attempt, never two.
export const webhookQueueMessageSchema = z
  .object({
    v: z.literal(1),
    orgId: z.string().min(1).max(100),
    messageId: z.string().min(1).max(100),
    endpointId: z.string().min(1).max(100),
    attempts: z.number().int().min(0).max(1000),
  })
  .strict();
export type WebhookQueueMessage = z.infer<typeof webhookQueueMessageSchema>;

/** What the sweep needs of a Queue binding (sendBatch: at most 100 messages per call). */
export interface WebhookQueue {
  sendBatch(messages: Iterable<{ body: WebhookQueueMessage; contentType?: "json" }>): Promise<unknown>;
}

/** Cloudflare Queues: at most 100 messages per sendBatch. */
export const QUEUE_BATCH_LIMIT = 100;
