import { z } from "zod";
import { databaseTimeoutMs } from "../../shared/db/timeoutVar";
import type { RelayMessage } from "../../shared/schemas/relay";

export interface ConsumerBindings {
  DATABASE_URL: string;
  NEON_WS_PROXY?: string;
  RETRY_BASE_DELAY_SECONDS?: string;
  RETRY_MAX_DELAY_SECONDS?: string;
  DATABASE_TIMEOUT_MS?: string;
  /** Producer binding to the dead-letter queue: malformed messages and events the database refuses. */
  EVENTS_DLQ: Queue<unknown>;
  /** Producer binding to the relay queue: one message per destination and batch of new events. */
  RELAY_QUEUE: Queue<RelayMessage>;
}

export const consumerVarsSchema = z.object({
  DATABASE_URL: z.string().min(1),
  NEON_WS_PROXY: z.string().min(1).optional(),
  RETRY_BASE_DELAY_SECONDS: z.coerce.number().int().min(0).max(3600).default(2),
  RETRY_MAX_DELAY_SECONDS: z.coerce.number().int().min(0).max(43200).default(600),
  DATABASE_TIMEOUT_MS: databaseTimeoutMs,
});
export type ConsumerVars = z.infer<typeof consumerVarsSchema>;
