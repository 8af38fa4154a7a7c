import { eventsMessageSchema } from "../../shared/schemas/queue";
import type { DeadLetter, DeadLetterKind, DeadLetterReason } from "./store";
import { withoutTransientFields } from "./strip";

/**
 * What a Worker puts on a dead-letter queue itself, with the reason (Cloudflare moves a message that ran out
 * of retries there as it is, with none): a message that is not ours (malformed), or the events of a message
 * that the database refused as data (data_error, with the SQLSTATE).
 */
export interface DeadLetterEnvelope {
  deadLetter: 1;
  reason: DeadLetterReason;
  code?: string;
  message: unknown;
}

export function deadLetterEnvelope(
  reason: DeadLetterReason,
  message: unknown,
  code?: string,
): DeadLetterEnvelope {
  return { deadLetter: 1, reason, ...(code ? { code } : {}), message };
}

const isRecord = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);

const idOf = (v: unknown) => (typeof v === "string" && v.length > 0 ? v : null);

/**
 * A message taken off a dead-letter queue, as the dead letter to store. `queueMessageId` names it (stable
 * across redeliveries, so storing twice overwrites); relay batches use their batch id. `known`: whether the
 * body has the queue's own shape (a message that does not is malformed, whatever the envelope says).
 */
export function deadLetterOf(
  kind: DeadLetterKind,
  body: unknown,
  queueMessageId: string,
  at: Date,
  known: (message: unknown) => boolean,
): DeadLetter {
  const wrapped = isRecord(body) && body.deadLetter === 1;
  const message = wrapped ? body.message : body;
  let reason: DeadLetterReason = wrapped ? ((body.reason as DeadLetterReason) ?? "malformed") : "max_retries";
  if (!known(message)) reason = "malformed";
  const m = isRecord(message) ? message : {};
  const redrives = typeof m.redrives === "number" && Number.isInteger(m.redrives) ? m.redrives : 0;
  const code = wrapped && typeof body.code === "string" ? body.code.slice(0, 5) : undefined;
  return {
    v: 1,
    kind,
    id: (kind === "relay" ? idOf(m.batchId) : null) ?? queueMessageId,
    deadAt: at.toISOString(),
    reason,
    ...(code ? { code } : {}),
    orgId: idOf(m.orgId),
    projectId: idOf(m.projectId),
    redrives,
    body: withoutTransientFields(message),
  };
}

export const isEventsMessage = (message: unknown) => eventsMessageSchema.safeParse(message).success;
