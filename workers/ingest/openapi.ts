import { z } from "zod";
import { ERROR_CODES, type ErrorCode, type EventRejectionCode } from "../../shared/errors";
import { INGEST_LIMITS as L } from "../../shared/limits";
import { propertiesSchema } from "../../shared/schemas/properties";
import { ingestEnvelopeSchema, sdkEventSchema } from "../../shared/schemas/sdk-event";

// The OpenAPI 3.1 document of POST /l/events, served at GET /l/openapi.json. The request schemas are
// generated from the zod schemas ingest validates with (shared/schemas/sdk-event.ts), so the document cannot
// drift from what is accepted. Built on the first request for it and kept for the isolate's life: event
// traffic never pays for it.

/** Codes per status, as the ingest Worker answers them (workers/ingest/app.ts, parseBatch, normalizeEvents). */
const ERRORS = {
  400: {
    codes: ["invalid_json", "invalid_body", "too_many_events", "invalid_events"],
    description:
      "invalid_json: the body is not JSON (or empty). invalid_body: not an object, `events` not an array, " +
      `or an empty batch. too_many_events: more than ${L.maxEventsPerRequest} events. invalid_events: no ` +
      "event in the batch is valid; `details.rejected` lists why, as in a 202.",
  },
  401: {
    codes: ["unauthorized"],
    description: "Missing or malformed (not `lp_pk_` + 32 letters or digits), unknown or revoked SDK key.",
  },
  403: { codes: ["project_archived"], description: "The key's project is archived and accepts no events." },
  413: {
    codes: ["payload_too_large"],
    description: `The body is over ${L.maxBodyBytes} bytes (checked while it streams, with or without Content-Length).`,
  },
  429: {
    codes: ["rate_limited"],
    description: "Too many requests for this SDK key (1,000 per 10 s); retry after `Retry-After` seconds.",
  },
  500: { codes: ["internal_error"], description: "Something went wrong on our side; quote the requestId." },
  503: {
    codes: ["database_unavailable", "queue_unavailable"],
    description: "Briefly unavailable; retry with the same event ids (nothing is stored twice).",
  },
} as const satisfies Record<number, { codes: readonly ErrorCode[]; description: string }>;

/** Every per-event code, listed by a Record so a new code cannot be left out of the document. */
const REJECTION_CODES: Record<EventRejectionCode, string> = {
  invalid_event: "The event does not match SdkEvent, or breaks a property bound.",
  event_too_large: `The event is over ${L.maxEventBytes} bytes of JSON.`,
  timestamp_too_old: "The event's timestamp is older than the project's retention.",
};
const rejectionCodes = Object.keys(REJECTION_CODES) as [EventRejectionCode, ...EventRejectionCode[]];

const DESCRIPTIONS: Record<string, string> = {
  SdkEvent:
    "One event. Unknown fields are ignored (never stored). An event that breaks a rule is rejected on its " +
    "own (listed in `rejected`); the others in the batch are still accepted.",
  EventBatch: "A batch: `sentAt` (the device's clock when sending) corrects clock skew.",
  EventsAccepted: "Sent once the queue has accepted every accepted event.",
};

function componentSchemas(): Record<string, unknown> {
  // Ids only: descriptions inside the schemas (.describe) live in zod's global registry, read as usual.
  const registry = z.registry<{ id: string }>();
  registry.add(sdkEventSchema, { id: "SdkEvent" });
  // The envelope as parseBatch reads it; each item is then judged on its own against SdkEvent.
  registry.add(
    ingestEnvelopeSchema.extend({ events: z.array(sdkEventSchema).min(1).max(L.maxEventsPerRequest) }),
    { id: "EventBatch" },
  );
  registry.add(
    z.object({
      accepted: z.number().int().min(1).describe("Events queued (at least one)."),
      rejected: z.array(
        z.object({
          index: z.number().int().min(0).describe("Position of the event in the batch (0 for a bare event)."),
          code: z.enum(rejectionCodes).describe(
            Object.entries(REJECTION_CODES)
              .map(([code, why]) => `${code}: ${why}`)
              .join(" "),
          ),
          message: z.string(),
        }),
      ),
    }),
    { id: "EventsAccepted" },
  );
  const ingestCodes = Object.values(ERRORS).flatMap((e) => e.codes) as [ErrorCode, ...ErrorCode[]];
  registry.add(
    z.object({
      error: z.object({
        type: z.enum([...new Set(ingestCodes.map((code) => ERROR_CODES[code].type))] as [
          string,
          ...string[],
        ]),
        code: z.enum(ingestCodes),
        message: z.string(),
        requestId: z.string().describe("Also in the X-Request-Id header."),
        docs: z.string(),
        details: z.unknown().optional(),
      }),
    }),
    { id: "Error" },
  );
  const generated = z.toJSONSchema(registry, {
    // Request schemas describe what a client sends: the input side of pageUrl's normalising transform.
    io: "input",
    // properties is a z.custom: given its JSON form in override below.
    unrepresentable: "any",
    uri: (id) => `#/components/schemas/${id}`,
    override: (ctx) => {
      // properties is a z.custom (it keeps a "__proto__" key z.record would drop): a JSON object.
      if (ctx.zodSchema === propertiesSchema) {
        ctx.jsonSchema.type = "object";
        ctx.jsonSchema.description =
          `Any JSON object: at most ${L.maxPropertyDepth} levels deep, ${L.maxPropertyKeys} keys in all, ` +
          `keys of at most ${L.maxPropertyKeyLength} characters, strings of at most ${L.maxPropertyStringLength}.`;
      }
    },
  });
  // Components carry no dialect or $id of their own: the document's (OpenAPI 3.1) applies.
  return Object.fromEntries(
    Object.entries(generated.schemas).map(([id, { $schema: _dialect, $id: _id, ...schema }]) => [
      id,
      { ...(DESCRIPTIONS[id] ? { description: DESCRIPTIONS[id] } : {}), ...schema },
    ]),
  );
}

const ref = (id: string) => ({ $ref: `#/components/schemas/${id}` });
const requestIdHeader = {
  "X-Request-Id": {
    description: "Our id for this request, also `requestId` in error bodies.",
    schema: { type: "string" },
  },
};

function buildDocument(): Record<string, unknown> {
  const errors = Object.fromEntries(
    Object.entries(ERRORS).map(([status, { codes, description }]) => [
      status,
      {
        description: `${codes.join(", ")}. ${description}`,
        headers: {
          ...requestIdHeader,
          ...(status === "429"
            ? {
                "Retry-After": {
                  description: "Seconds to wait before retrying.",
                  schema: { type: "integer" },
                },
              }
            : {}),
        },
        content: { "application/json": { schema: ref("Error") } },
      },
    ]),
  );
  return {
    openapi: "3.1.0",
    info: {
      title: "Layers ingest API",
      version: "1.0.0",
      description:
        "SDKs send events with the project's publishable SDK key (`Authorization: Bearer lp_pk_…`). " +
        `Limits: body ≤ ${L.maxBodyBytes} bytes, ≤ ${L.maxEventsPerRequest} events per request, one event ≤ ` +
        `${L.maxEventBytes} bytes of JSON, 1,000 requests per 10 s per key. Any origin may send (CORS *).`,
    },
    components: {
      securitySchemes: {
        sdkKey: {
          type: "http",
          scheme: "bearer",
          description: "The project's publishable SDK key: `lp_pk_` followed by 32 letters or digits.",
        },
      },
      schemas: componentSchemas(),
    },
    security: [{ sdkKey: [] }],
    paths: {
      "/l/events": {
        post: {
          operationId: "sendEvents",
          summary: "Send a batch of events (or one bare event)",
          description:
            "The body is `{ sentAt?, events: [...] }` or one bare event object, read as JSON whatever its " +
            "Content-Type (no 415). Valid events are queued even when others in the " +
            "batch are not; send an `eventId` with each event so a retry stores nothing twice.",
          requestBody: {
            required: true,
            content: { "application/json": { schema: { anyOf: [ref("EventBatch"), ref("SdkEvent")] } } },
          },
          responses: {
            202: {
              description: "Accepted: the valid events are queued; `rejected` lists the others.",
              headers: requestIdHeader,
              content: { "application/json": { schema: ref("EventsAccepted") } },
            },
            ...errors,
          },
        },
      },
    },
  };
}

let document: Record<string, unknown> | undefined;

/** The document, with this request's origin as its server so "try it" tools call the Worker that served it. */
export function ingestOpenApiDocument(origin: string): Record<string, unknown> {
  document ??= buildDocument();
  return { ...document, servers: [{ url: origin }] };
}
