import { z } from "zod";
import { SEGMENT_BATCH_PATHS, SEGMENT_LIMITS, SEGMENT_TYPES } from "../../functions/ingest/segmentMessages";
import { ERROR_CODES, type ErrorCode, type EventRejectionCode } from "../../shared/errors";
import { INGEST_LIMITS as L } from "../../shared/limits";
import { propertiesSchema } from "../../shared/schemas/properties";
import { ingestEnvelopeSchema, sdkEventSchema } from "../../shared/schemas/sdk-event";

// The OpenAPI 3.1 document of POST /l/events and the Segment-compatible /v1/* routes, served at GET /l/openapi.json. The request schemas are
// generated from the zod schemas ingest validates with (shared/schemas/sdk-event.ts), so the document cannot
// drift from what is accepted. Built on the first request for it and kept for the isolate's life: event
// traffic never pays for it.

/** Codes per status, as the ingest Worker answers them (workers/ingest/app.ts, parseBatch, normalizeEvents). */
const ERRORS = {
  400: {
    codes: ["invalid_json", "invalid_body", "too_many_events", "invalid_events", "invalid_request"],
    description:
      "invalid_json: the body is not JSON (or empty). invalid_body: not an object, `events` not an array, " +
      `or an empty batch. too_many_events: more than ${L.maxEventsPerRequest} events. invalid_events: no ` +
      "event in the batch is valid; `details.rejected` lists why, as in a 202. invalid_request: the key " +
      "sent twice (`?key=` and Authorization, or `?key=` repeated).",
  },
  401: {
    codes: ["unauthorized"],
    description:
      "Missing or malformed (not `lp_pk_` + 32 letters or digits), unknown or revoked SDK key; a secret API " +
      "key in `?key=` (never accepted in a URL).",
  },
  403: { codes: ["project_archived"], description: "The key's project is archived and accepts no events." },
  413: {
    codes: ["payload_too_large"],
    description: `The body is over ${L.maxBodyBytes} bytes (checked while it streams, with or without Content-Length).`,
  },
  415: {
    codes: ["unsupported_media_type"],
    description:
      "Only with `?key=`: a Content-Type other than `text/plain` or `application/json` (or a charset " +
      "other than UTF-8).",
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

/** Segment's routes: its documented 400 for sizes and JSON; everything about one message is a 200. */
const SEGMENT_ERRORS = {
  400: {
    codes: ["invalid_json", "invalid_body", "too_many_events", "message_too_large", "batch_too_large"],
    description:
      "As Segment documents, 400 (not 413) for sizes. invalid_json: the body is not JSON. invalid_body: not " +
      "an object, `batch` not a non-empty array, or a `sentAt` that is no time. too_many_events: more than " +
      `${SEGMENT_LIMITS.maxMessagesPerBatch} messages (Segment's own limit is 2,500). message_too_large: a ` +
      `message over ${SEGMENT_LIMITS.maxMessageBytes} bytes (\`details.index\` in a batch). batch_too_large: ` +
      `a batch request over ${SEGMENT_LIMITS.maxBatchBytes} bytes. Nothing of the request is accepted.`,
  },
  401: {
    codes: ["unauthorized"],
    description:
      "No Basic auth, a non-empty password, or a user that is not a live SDK key (`lp_pk_` + 32 letters or digits).",
  },
  403: ERRORS[403],
  429: ERRORS[429],
  500: ERRORS[500],
  503: ERRORS[503],
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
  SegmentMessage:
    "One message of Segment's HTTP Tracking API. Only the fields listed are read (context.ip never is); the " +
    "message becomes one event exactly as an SdkEvent would (README: Segment-compatible ingest, mapping).",
  SegmentBatch:
    "Segment's batch: the batch's `context` is merged under each message's own; `sentAt` corrects clocks.",
  SegmentAccepted:
    "Segment's answer, `success: true`, whenever the request as a whole is fine — also when single messages " +
    "were refused; `accepted` and `rejected` say which (Segment's clients ignore them).",
};

const segmentText = z.string();
const segmentObject = z.looseObject({});
/** What the ingest reads of a Segment message (functions/ingest/segmentMessages.ts); more is allowed. */
const segmentMessageSchema = z.looseObject({
  type: z.enum(SEGMENT_TYPES).optional().describe("Required in a batch; the route says it otherwise."),
  messageId: segmentText.optional().describe("Becomes the event id: a retry stores nothing twice."),
  userId: segmentText.optional(),
  anonymousId: segmentText.optional().describe("userId or anonymousId is required."),
  previousId: segmentText.optional().describe("alias: the id that userId replaces."),
  event: segmentText.optional().describe("track: the event name."),
  name: segmentText.optional().describe("page, screen: stored as properties.name."),
  groupId: segmentText.optional().describe("group: stored as properties.groupId; group traits are not read."),
  properties: segmentObject.optional(),
  traits: z
    .looseObject({ email: segmentText.optional(), phone: segmentText.optional() })
    .optional()
    .describe("identify: email and phone are hashed at the edge; no other trait is read."),
  timestamp: segmentText.optional().describe("ISO 8601 with offset; corrected with sentAt."),
  context: z
    .looseObject({
      userAgent: segmentText.optional().describe("Parsed to os, browser and model, then dropped."),
      traits: z.looseObject({ email: segmentText.optional(), phone: segmentText.optional() }).optional(),
      device: z
        .looseObject({
          type: segmentText.optional().describe("ios or android: which ad id advertisingId is."),
          advertisingId: segmentText.optional(),
          adTrackingEnabled: z.boolean().optional().describe("false drops advertisingId."),
          model: segmentText.optional(),
        })
        .optional(),
      os: z.looseObject({ name: segmentText.optional(), version: segmentText.optional() }).optional(),
      app: z.looseObject({ namespace: segmentText.optional().describe("Becomes appId.") }).optional(),
      page: z
        .looseObject({ url: segmentText.optional().describe("Relayed without query and fragment.") })
        .optional(),
      consent: z
        .looseObject({
          categoryPreferences: z
            .record(z.string(), z.boolean())
            .optional()
            .describe("Its Advertising category (any case) is the ads consent."),
        })
        .optional(),
    })
    .optional(),
});

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
  registry.add(segmentMessageSchema, { id: "SegmentMessage" });
  registry.add(
    z.looseObject({
      batch: z.array(segmentMessageSchema).min(1).max(SEGMENT_LIMITS.maxMessagesPerBatch),
      context: segmentObject.optional(),
      sentAt: segmentText.optional(),
    }),
    { id: "SegmentBatch" },
  );
  registry.add(
    z.object({
      success: z.literal(true),
      accepted: z.number().int().min(0).describe("Messages queued."),
      rejected: z.array(
        z.object({
          index: z
            .number()
            .int()
            .min(0)
            .describe("Position of the message in `batch` (0 for a single message)."),
          code: z.enum(rejectionCodes),
          message: z.string(),
        }),
      ),
    }),
    { id: "SegmentAccepted" },
  );
  const ingestCodes = [
    ...new Set([...Object.values(ERRORS), ...Object.values(SEGMENT_ERRORS)].flatMap((e) => e.codes)),
  ] as [ErrorCode, ...ErrorCode[]];
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

function errorResponses(
  table: Record<number, { codes: readonly ErrorCode[]; description: string }>,
): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(table).map(([status, { codes, description }]) => [
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
}

/** One Segment route: its body, Segment's 200 and its errors, under Basic auth. */
function segmentOperation(route: string, summary: string, body: Record<string, unknown>) {
  return {
    post: {
      operationId: `segment${route[0]!.toUpperCase()}${route.slice(1)}`,
      summary,
      tags: ["Segment-compatible"],
      security: [{ segmentWriteKey: [] }],
      requestBody: { required: true, content: { "application/json": { schema: body } } },
      responses: {
        200: {
          description:
            "Accepted as Segment answers: the valid messages are queued; `rejected` lists the others.",
          headers: requestIdHeader,
          content: { "application/json": { schema: ref("SegmentAccepted") } },
        },
        ...errorResponses(SEGMENT_ERRORS),
      },
    },
  };
}

function buildDocument(): Record<string, unknown> {
  const errors = errorResponses(ERRORS);
  const segmentPaths = Object.fromEntries([
    ...SEGMENT_BATCH_PATHS.map((path) => [
      `/v1/${path}`,
      segmentOperation(
        path,
        `Segment: a batch of messages (≤ ${SEGMENT_LIMITS.maxBatchBytes} bytes, ≤ ${SEGMENT_LIMITS.maxMessagesPerBatch} messages)` +
          (path === "batch" ? "" : "; the same as /v1/batch, the path Segment's own libraries post to"),
        ref("SegmentBatch"),
      ),
    ]),
    ...SEGMENT_TYPES.map((type) => [
      `/v1/${type}`,
      segmentOperation(
        type,
        `Segment: one ${type} message (≤ ${SEGMENT_LIMITS.maxMessageBytes} bytes)`,
        ref("SegmentMessage"),
      ),
    ]),
  ]);
  return {
    openapi: "3.1.0",
    info: {
      title: "Layers ingest API",
      version: "1.0.0",
      description:
        "SDKs send events with the project's publishable SDK key (`Authorization: Bearer lp_pk_…`, or " +
        "`?key=lp_pk_…` from a browser that must not send a CORS preflight). " +
        `Limits: body ≤ ${L.maxBodyBytes} bytes, ≤ ${L.maxEventsPerRequest} events per request, one event ≤ ` +
        `${L.maxEventBytes} bytes of JSON, 1,000 requests per 10 s per key. Any origin may send (CORS *). ` +
        "Segment's HTTP Tracking API is accepted too (/v1/batch, /v1/track, …): the same events, Segment's " +
        "answers, the SDK key as the Basic auth write key.",
    },
    components: {
      securitySchemes: {
        sdkKey: {
          type: "http",
          scheme: "bearer",
          description: "The project's publishable SDK key: `lp_pk_` followed by 32 letters or digits.",
        },
        segmentWriteKey: {
          type: "http",
          scheme: "basic",
          description:
            "Segment's routes: the SDK key is the write key, sent as the Basic auth user with an empty password.",
        },
        sdkKeyInUrl: {
          type: "apiKey",
          in: "query",
          name: "key",
          description:
            "The same publishable SDK key in the URL, for a browser sending without a CORS preflight " +
            "(`sendBeacon`, or `fetch` with no custom header): the body is then sent as `text/plain`. " +
            "Publishable keys only; a secret API key is never accepted in a URL.",
        },
      },
      schemas: componentSchemas(),
    },
    security: [{ sdkKey: [] }, { sdkKeyInUrl: [] }],
    paths: {
      "/l/events": {
        post: {
          operationId: "sendEvents",
          summary: "Send a batch of events (or one bare event)",
          description:
            "The body is `{ sentAt?, events: [...] }` or one bare event object, UTF-8 JSON. With the key " +
            "in Authorization it is read as JSON whatever its Content-Type; with `?key=` the Content-Type " +
            "must be `text/plain` (no CORS preflight) or `application/json`, or absent (else 415). The " +
            "key once: both ways at once is a 400. Valid events are queued even when others in the " +
            "batch are not; send an `eventId` with each event so a retry stores nothing twice.",
          requestBody: {
            required: true,
            content: {
              "application/json": { schema: { anyOf: [ref("EventBatch"), ref("SdkEvent")] } },
              "text/plain": { schema: { anyOf: [ref("EventBatch"), ref("SdkEvent")] } },
            },
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
      ...segmentPaths,
    },
  };
}

let document: Record<string, unknown> | undefined;

/** The document, with this request's origin as its server so "try it" tools call the Worker that served it. */
export function ingestOpenApiDocument(origin: string): Record<string, unknown> {
  document ??= buildDocument();
  return { ...document, servers: [{ url: origin }] };
}
