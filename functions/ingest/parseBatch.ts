import { ApiError } from "../../shared/errors";
import { INGEST_LIMITS } from "../../shared/limits";
import { ingestEnvelopeSchema } from "../../shared/schemas/sdk-event";

export interface ParsedBatch {
  sentAt: string | number | undefined;
  events: unknown[];
}

/**
 * Turns the request body into a list of raw events. Accepts `{ sentAt?, events: [...] }` or one bare event
 * object. Envelope problems fail the whole request; problems inside one event are judged per event later.
 */
export function parseBatch(body: string): ParsedBatch {
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch {
    throw new ApiError("invalid_json", "The request body is not valid JSON.");
  }
  if (json === null || typeof json !== "object" || Array.isArray(json)) {
    throw new ApiError(
      "invalid_body",
      'The body must be an object: { "events": [ ... ] } or a single event.',
    );
  }
  const batch = "events" in json ? ingestEnvelopeSchema.safeParse(json) : null;
  if (batch && !batch.success) {
    throw new ApiError("invalid_body", "The batch envelope is invalid.", {
      details: batch.error.issues.map((i) => ({ path: i.path.join("."), message: i.message })),
    });
  }
  const parsed: ParsedBatch = batch?.success
    ? { sentAt: batch.data.sentAt, events: batch.data.events }
    : { sentAt: undefined, events: [json] };
  if (parsed.events.length === 0) throw new ApiError("invalid_body", "The batch holds no events.");
  if (parsed.events.length > INGEST_LIMITS.maxEventsPerRequest) {
    throw new ApiError(
      "too_many_events",
      `A request may carry at most ${INGEST_LIMITS.maxEventsPerRequest} events; this one has ${parsed.events.length}.`,
    );
  }
  return parsed;
}
