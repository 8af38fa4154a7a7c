import { z } from "zod";

/**
 * DATABASE_TIMEOUT_MS, the queue Workers' deadline for one database step (getting a connection, or one
 * query). Long enough for a Neon compute to wake from suspend and for a batch's messages to queue for the
 * pool's few connections; short enough that a dead connection costs a message one retry, not the queue.
 */
export const databaseTimeoutMs = z.coerce.number().int().min(100).max(120_000).default(15_000);
