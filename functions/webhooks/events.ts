import { z } from "zod";
import { DESTINATION_KINDS } from "../../shared/destinations";
import { CONTENT_KINDS } from "../content/providers/types";

// The catalogue of webhook events: every type a partner can subscribe to and the exact shape of its
// `data`. Payloads are thin on purpose — ids, statuses, counts, timestamps and API links to fetch more —
// and never personal data (no user ids, emails, phones, names, IPs): a webhook leaves our control the moment
// it is sent, so it carries only what tells the partner which resource to look at. Every schema is strict,
// so a field added to a payload without being added here fails the emit (outbox.ts parses before storing),
// and GET /v1/webhook-event-types publishes these schemas as JSON Schema.

const id = (description: string) => z.string().min(1).max(64).describe(description);
const timestamp = (description: string) => z.iso.datetime({ offset: true }).describe(description);
const link = z
  .string()
  .regex(/^\/v1\/[A-Za-z0-9_/-]+$/)
  .max(256)
  .describe("Path of the resource in the partner API (GET it with an API key for the details).");
const count = (description: string) => z.number().int().min(0).describe(description);
const role = z.enum(["owner", "admin", "developer", "read_only"]);

const apiKeyEvent = z
  .object({
    apiKeyId: id("The key's id."),
    role,
    mode: z.enum(["live", "test"]),
    projectId: id("The project the key is restricted to; null for an org-wide key.").nullable(),
    link,
  })
  .strict();

export const WEBHOOK_EVENTS = {
  "api_key.created": {
    description: "An API key was created (by POST /v1/api-keys, or as the new key of a rotation).",
    schema: apiKeyEvent,
  },
  "api_key.revoked": {
    description: "An API key was revoked: it no longer authenticates.",
    schema: apiKeyEvent,
  },
  "project.archived": {
    description: "A project was archived: its SDK keys are refused by ingest (within 5 s).",
    schema: z
      .object({
        projectId: id("The archived project."),
        archivedAt: timestamp("When it was archived."),
        link,
      })
      .strict(),
  },
  "deletion_request.completed": {
    description:
      "A data-subject deletion request finished: the user's data is erased; the counts say what went.",
    schema: z
      .object({
        deletionRequestId: id("The deletion request (its receipt)."),
        projectId: id("Its project."),
        status: z.literal("completed"),
        deletedEvents: count("Events erased."),
        deletedUsers: count("User state rows erased."),
        deletedAttributions: count("Apple Search Ads attributions erased."),
        deletedDeadLetters: count("Relay dead letters erased."),
        link,
      })
      .strict(),
  },
  "deletion_request.failed": {
    description:
      "A data-subject deletion request gave up after its retries; create a new one (see its failureReason).",
    schema: z
      .object({
        deletionRequestId: id("The deletion request."),
        projectId: id("Its project."),
        status: z.literal("failed"),
        attempts: count("Runs that failed."),
        link,
      })
      .strict(),
  },
  "destination.failing": {
    description:
      "A conversion-relay destination started failing: a batch was dead-lettered after its retries or refused by the platform (status active → failing).",
    schema: z
      .object({
        projectId: id("The destination's project."),
        destination: z.enum(DESTINATION_KINDS),
        status: z.literal("failing"),
        failingSince: timestamp("When it started failing."),
        link,
      })
      .strict(),
  },
  "destination.recovered": {
    description: "A failing destination delivered again (status failing → active).",
    schema: z
      .object({
        projectId: id("The destination's project."),
        destination: z.enum(DESTINATION_KINDS),
        status: z.literal("active"),
        recoveredAt: timestamp("When the successful delivery was recorded."),
        link,
      })
      .strict(),
  },
  "content_job.succeeded": {
    description:
      "A content job finished: its media is stored (storage true: our bucket; { id }: your bucket) and recorded as a container. Never carries the brief or the media.",
    schema: z
      .object({
        contentJobId: id("The job."),
        projectId: id("Its project."),
        kind: z.enum(CONTENT_KINDS),
        status: z.literal("succeeded"),
        storageMode: z.enum(["cloud", "own", "none"]),
        containerId: id("The container holding the media; null for storage false (nothing kept).").nullable(),
        link,
      })
      .strict(),
  },
  "content_job.failed": {
    description:
      "A content job gave up after its retries (or at once, for a failure no retry can fix); errorCode says why. Its request data is already gone.",
    schema: z
      .object({
        contentJobId: id("The job."),
        projectId: id("Its project."),
        kind: z.enum(CONTENT_KINDS),
        status: z.literal("failed"),
        storageMode: z.enum(["cloud", "own", "none"]),
        errorCode: z
          .string()
          .regex(/^[a-z_]{1,64}$/)
          .describe(
            "Stable code: provider_timeout, provider_unavailable, provider_rejected, storage_unavailable, …",
          ),
        link,
      })
      .strict(),
  },
  "webhook_endpoint.disabled": {
    description:
      "A webhook endpoint was disabled: it answered 410 Gone, or kept failing, or was switched off by hand. Sent to the org's other endpoints.",
    schema: z
      .object({
        webhookEndpointId: id("The endpoint that was disabled."),
        reason: z.enum(["manual", "gone", "failing"]),
        disabledAt: timestamp("When."),
        failingSince: timestamp("Start of the failure streak that disabled it, if any.").nullable(),
        link,
      })
      .strict(),
  },
  "webhook.test": {
    description: "Sent by POST /v1/webhook-endpoints/{id}/test to check an endpoint; nothing happened.",
    schema: z
      .object({
        webhookEndpointId: id("The endpoint being tested."),
        test: z.literal(true),
      })
      .strict(),
  },
} as const satisfies Record<string, { description: string; schema: z.ZodType }>;

export type WebhookEventType = keyof typeof WEBHOOK_EVENTS;
export type WebhookPayload<T extends WebhookEventType> = z.infer<(typeof WEBHOOK_EVENTS)[T]["schema"]>;

export const WEBHOOK_EVENT_TYPES = Object.keys(WEBHOOK_EVENTS) as WebhookEventType[];

/** Own keys only: a subscribed type named "constructor" or "__proto__" is not an event type. */
export function isWebhookEventType(value: string): value is WebhookEventType {
  return Object.hasOwn(WEBHOOK_EVENTS, value);
}

/**
 * The body every delivery carries (the Standard Webhooks recommended shape): the event type, when it
 * happened, and the payload as `data`. The `webhook-id` header is the message id.
 */
export function webhookBody(message: { eventType: string; createdAt: Date; payload: unknown }): string {
  return JSON.stringify({
    type: message.eventType,
    timestamp: message.createdAt.toISOString(),
    data: message.payload,
  });
}

/** The catalogue as GET /v1/webhook-event-types publishes it: each type with the JSON Schema of its data. */
export function webhookEventCatalogue() {
  return WEBHOOK_EVENT_TYPES.map((type) => ({
    type,
    description: WEBHOOK_EVENTS[type].description,
    schema: z.toJSONSchema(WEBHOOK_EVENTS[type].schema, { target: "draft-2020-12" }) as Record<
      string,
      unknown
    >,
  }));
}
