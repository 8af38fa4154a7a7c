import { type OpenAPIHono, z } from "@hono/zod-openapi";
import { parseKeyring } from "../../../functions/destinations/crypto";
import { WEBHOOK_EVENT_TYPES, webhookEventCatalogue } from "../../../functions/webhooks/events";
import {
  changeWebhookEndpoint,
  createWebhookEndpoint,
  deleteWebhookEndpoint,
  listEndpointAttempts,
  listEndpointMessages,
  listWebhookEndpoints,
  loadWebhookTest,
  recordWebhookTest,
  resendWebhookMessage,
  rotateWebhookSecret,
  sendWebhookTest,
  visibleEndpoint,
  WEBHOOK_LIMITS,
  webhookAttemptJson,
  webhookDeliveryJson,
  webhookEndpointJson,
} from "../../../functions/webhooks/verbs";
import { parseEnv } from "../../common/parseEnv";
import { requires } from "../access";
import type { ApiEnv } from "../context";
import { webhookVarsSchema } from "../env";
import { mutation, mutationWithCall, query } from "../handlers";
import {
  apiRoute,
  dateTime,
  ErrorSchema,
  errorResponses,
  IdempotencyHeaderSchema,
  json,
  listOf,
  PageQuerySchema,
  page,
} from "../schemas";

// Webhook endpoints: where the org's events are sent (Standard Webhooks). Roles as for destinations:
// reading needs developer; creating, changing, deleting, rotating, test-sending and re-sending need admin,
// because they decide where the org's events go and use the signing secret. Org-wide keys only: an
// endpoint can receive org-level events (API keys), which a project-restricted key may not see.
// The signing secret is shown once, as `secret`: the idempotency layer stores that field as null, and
// audit diffs drop it.

const L = WEBHOOK_LIMITS;

// No zod maximum: the SSRF guard refuses an over-long URL with its own stable reason (url_too_long).
const url = z
  .string()
  .min(1)
  .openapi({
    description:
      `Where events are POSTed (≤ ${L.maxUrlLength} characters): https only (plain http to localhost only ` +
      "under `npm run dev`); no credentials in the URL; IP literals in private, loopback, link-local, CGNAT " +
      "and metadata ranges and internal names are refused (400 webhook_url_refused, details[0].reason).",
    example: "https://hooks.example.com/layers",
  });
const description = z
  .string()
  .max(L.maxDescriptionLength)
  .nullable()
  .openapi({ description: `A label for people (≤ ${L.maxDescriptionLength} characters).` });
const eventTypes = z
  .array(z.string().max(64))
  .max(L.maxEventTypes)
  .openapi({
    description:
      "The event types to send (see GET /v1/webhook-event-types); empty = every type, including types added later.",
    example: ["deletion_request.completed", "deletion_request.failed"],
  });
const projectId = z.string().max(64).nullable().openapi({
  description:
    "Only events of this project. Org-level events (api_key.*, webhook_endpoint.disabled) are not sent to a project-filtered endpoint.",
});

export const WebhookEndpointSchema = z
  .object({
    id: z.string().openapi({ example: "whe_5yqQ2hM8c6PnbX3vLk1R" }),
    object: z.literal("webhook_endpoint"),
    url: z.string(),
    description: z.string().nullable(),
    eventTypes: z.array(z.string()).openapi({ description: "Empty = every type." }),
    projectId: z.string().nullable(),
    enabled: z.boolean(),
    disabledReason: z.enum(["manual", "gone", "failing"]).nullable().openapi({
      description:
        "Why it is disabled: manual (PATCH enabled:false), gone (the receiver answered 410), failing (sustained failure).",
    }),
    disabledAt: dateTime().nullable(),
    failingSince: dateTime()
      .nullable()
      .openapi({ description: "First failed delivery of the current failure streak; null when healthy." }),
    previousSecretExpiresAt: dateTime().nullable().openapi({
      description: "After a rotation: until when the previous secret still signs beside the new one.",
    }),
    createdAt: dateTime(),
    updatedAt: dateTime(),
  })
  .openapi("WebhookEndpoint");

const secretField = z
  .string()
  .nullable()
  .openapi({
    description:
      "The signing secret (`whsec_` + base64), for any Standard Webhooks library. Shown once, in this " +
      "response only: an idempotent replay (Idempotent-Replayed: true) answers `secret: null`. Rotate it if lost.",
    example: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
  });

export const CreatedWebhookEndpointSchema = WebhookEndpointSchema.extend({ secret: secretField }).openapi(
  "CreatedWebhookEndpoint",
);

const CreateSchema = z
  .object({
    url,
    description: description.optional(),
    eventTypes: eventTypes.default([]),
    projectId: projectId.optional(),
    enabled: z.boolean().default(true),
  })
  .strict()
  .openapi("CreateWebhookEndpoint", {
    example: {
      url: "https://hooks.example.com/layers",
      description: "Deletion receipts",
      eventTypes: ["deletion_request.completed", "deletion_request.failed"],
      enabled: true,
    },
  });

const UpdateSchema = z
  .object({
    url: url.optional(),
    description: description.optional(),
    eventTypes: eventTypes.optional(),
    projectId: projectId.optional(),
    enabled: z.boolean().optional().openapi({
      description: "false: nothing is sent (reason manual). true: re-enables, whatever disabled it.",
    }),
  })
  .strict()
  .openapi("UpdateWebhookEndpoint", { example: { enabled: true } });

const RotateSchema = z
  .object({
    gracePeriodSeconds: z
      .number()
      .int()
      .min(0)
      .max(L.maxRotationGraceSeconds)
      .default(L.defaultRotationGraceSeconds)
      .openapi({
        description:
          "How long the previous secret keeps signing beside the new one (default 86400 = 24 h; 0 = stops now; at most 7 days).",
      }),
  })
  .strict()
  .openapi("RotateWebhookSecret", { example: { gracePeriodSeconds: 86400 } });

export const WebhookMessageSchema = z
  .object({
    id: z.string().openapi({ description: "The message id: the `webhook-id` header.", example: "msg_2ZkP…" }),
    object: z.literal("webhook_message"),
    endpointId: z.string(),
    eventType: z.string(),
    payload: z
      .record(z.string(), z.unknown())
      .openapi({ description: "The event's `data` (schemas: GET /v1/webhook-event-types)." }),
    status: z.enum(["pending", "succeeded", "failed"]).openapi({
      description: "pending: queued or retrying; succeeded: a 2xx came back; failed: retries ran out.",
    }),
    attempts: z.number().int(),
    nextAttemptAt: dateTime().nullable().openapi({ description: "When pending: the next try." }),
    lastAttemptAt: dateTime().nullable(),
    lastStatusCode: z.number().int().nullable(),
    createdAt: dateTime(),
  })
  .openapi("WebhookMessage", { description: "One event's delivery to one endpoint." });

export const WebhookAttemptSchema = z
  .object({
    id: z.string(),
    object: z.literal("webhook_attempt"),
    endpointId: z.string(),
    messageId: z.string().nullable().openapi({ description: "Null for a test send." }),
    attemptedAt: dateTime(),
    durationMs: z.number().int(),
    statusCode: z
      .number()
      .int()
      .nullable()
      .openapi({ description: "The receiver's HTTP status; null if none." }),
    errorCode: z.string().nullable().openapi({
      description:
        "Null on a 2xx; else http_status, redirect_not_followed, timeout, connection_failed or url_refused.",
    }),
    responseExcerpt: z
      .string()
      .nullable()
      .openapi({ description: "The first bytes of the receiver's answer, secrets cut." }),
  })
  .openapi("WebhookAttempt", { description: "One HTTP attempt. Kept 30 days." });

export const WebhookTestSchema = z
  .object({
    object: z.literal("webhook_test"),
    endpointId: z.string(),
    messageId: z.string().openapi({ description: "The test message's `webhook-id`." }),
    eventType: z.literal("webhook.test"),
    success: z.boolean().openapi({ description: "The receiver answered 2xx." }),
    statusCode: z.number().int().nullable(),
    durationMs: z.number().int(),
    errorCode: z.string().nullable(),
    responseExcerpt: z.string().nullable(),
    sentAt: dateTime(),
  })
  .openapi("WebhookTestResult");

export const WebhookEventTypeSchema = z
  .object({
    type: z.enum(WEBHOOK_EVENT_TYPES as [string, ...string[]]),
    description: z.string(),
    schema: z
      .record(z.string(), z.unknown())
      .openapi({ description: "JSON Schema (2020-12) of the event's `data`." }),
  })
  .openapi("WebhookEventType");

const EventTypeListSchema = z
  .object({
    object: z.literal("list"),
    data: z.array(WebhookEventTypeSchema),
    hasMore: z.literal(false),
    nextCursor: z.null(),
  })
  .openapi("WebhookEventTypeList");

const Params = z.object({
  id: z
    .string()
    .max(64)
    .openapi({ param: { name: "id", in: "path" } }),
});
const MessageParams = Params.extend({
  messageId: z
    .string()
    .max(64)
    .openapi({ param: { name: "messageId", in: "path" } }),
});
const MessageQuery = PageQuerySchema.extend({
  status: z.enum(["pending", "succeeded", "failed"]).optional(),
});

const unavailable = {
  503: json(
    ErrorSchema,
    "Signing-secret keys unavailable (destination_keys_unavailable), or the API briefly unavailable " +
      "(database_unavailable); retry",
  ),
};
const TAG = ["Webhooks"];

const routes = {
  eventTypes: apiRoute({
    ...requires("read_only"),
    method: "get",
    path: "/v1/webhook-event-types",
    tags: TAG,
    operationId: "listWebhookEventTypes",
    summary: "List the webhook event types with the JSON Schema of each payload",
    description:
      "The catalogue of events an endpoint can subscribe to. Payloads are thin (ids, statuses, counts, links) and never carry personal data.",
    responses: { 200: json(EventTypeListSchema, "Every event type") },
  }),
  create: apiRoute({
    ...requires("admin", { orgWide: true }),
    method: "post",
    path: "/v1/webhook-endpoints",
    tags: TAG,
    operationId: "createWebhookEndpoint",
    summary: "Create a webhook endpoint (the signing secret is in this response only)",
    description:
      `Registers a URL for the org's events (at most ${L.maxEndpointsPerOrg} endpoints per org: 409 conflict beyond). ` +
      "The URL is checked against the SSRF rules (400 webhook_url_refused). The signing secret is returned once; a replay carries `secret: null`.",
    request: {
      headers: IdempotencyHeaderSchema,
      body: { content: { "application/json": { schema: CreateSchema } }, required: true },
    },
    responses: {
      201: json(CreatedWebhookEndpointSchema, "The endpoint, with its signing secret"),
      ...errorResponses(400, 403, 404, 409, 422),
      ...unavailable,
    },
  }),
  list: apiRoute({
    ...requires("developer", { orgWide: true }),
    method: "get",
    path: "/v1/webhook-endpoints",
    tags: TAG,
    operationId: "listWebhookEndpoints",
    summary: "List webhook endpoints, newest first (never their secrets)",
    description: "Lists the org's webhook endpoints with their state; never a secret.",
    request: { query: PageQuerySchema },
    responses: {
      200: json(listOf(WebhookEndpointSchema, "WebhookEndpointList"), "A page of endpoints"),
      ...errorResponses(403),
    },
  }),
  get: apiRoute({
    ...requires("developer", { orgWide: true }),
    method: "get",
    path: "/v1/webhook-endpoints/{id}",
    tags: TAG,
    operationId: "getWebhookEndpoint",
    summary: "Get a webhook endpoint",
    description: "One endpoint with its state (enabled, why disabled, failing since); never its secret.",
    request: { params: Params },
    responses: { 200: json(WebhookEndpointSchema, "The endpoint"), ...errorResponses(403, 404) },
  }),
  update: apiRoute({
    ...requires("admin", { orgWide: true }),
    method: "patch",
    path: "/v1/webhook-endpoints/{id}",
    tags: TAG,
    operationId: "updateWebhookEndpoint",
    summary: "Change a webhook endpoint's URL, description, event types, project filter or enabled state",
    description:
      "Fields left out stay. `enabled: false` stops sending (and emits webhook_endpoint.disabled to the org's other endpoints); `enabled: true` re-enables an endpoint whatever disabled it.",
    request: {
      params: Params,
      headers: IdempotencyHeaderSchema,
      body: { content: { "application/json": { schema: UpdateSchema } }, required: true },
    },
    responses: {
      200: json(WebhookEndpointSchema, "The endpoint"),
      ...errorResponses(400, 403, 404, 409, 422),
    },
  }),
  delete: apiRoute({
    ...requires("admin", { orgWide: true }),
    method: "delete",
    path: "/v1/webhook-endpoints/{id}",
    tags: TAG,
    operationId: "deleteWebhookEndpoint",
    summary: "Delete a webhook endpoint: nothing more is sent to it",
    description: "Deletes an endpoint; deliveries still queued for it are dropped.",
    request: { params: Params, headers: IdempotencyHeaderSchema },
    responses: { 204: { description: "Deleted" }, ...errorResponses(400, 403, 404, 409, 422) },
  }),
  rotate: apiRoute({
    ...requires("admin", { orgWide: true }),
    method: "post",
    path: "/v1/webhook-endpoints/{id}/rotate-secret",
    tags: TAG,
    operationId: "rotateWebhookSecret",
    summary: "Rotate the signing secret: the new one now, both sign during the grace period",
    description:
      "Issues a new signing secret (returned once). For `gracePeriodSeconds` (default 24 h, at most 7 days) every delivery carries two signatures in `webhook-signature`, one per secret, so receivers can switch without missing a message.",
    request: {
      params: Params,
      headers: IdempotencyHeaderSchema,
      body: { content: { "application/json": { schema: RotateSchema } }, required: false },
    },
    responses: {
      201: json(CreatedWebhookEndpointSchema, "The endpoint, with its new signing secret"),
      ...errorResponses(400, 403, 404, 409, 422),
      ...unavailable,
    },
  }),
  test: apiRoute({
    ...requires("admin", { orgWide: true }),
    method: "post",
    path: "/v1/webhook-endpoints/{id}/test",
    tags: TAG,
    operationId: "testWebhookEndpoint",
    summary: "Send a signed webhook.test event now and return the receiver's answer",
    description:
      "Sends one `webhook.test` event, signed like every delivery, synchronously, and returns the receiver's status, latency and the first bytes of its answer. Works on a disabled endpoint. The attempt is logged.",
    request: { params: Params, headers: IdempotencyHeaderSchema },
    responses: {
      200: json(WebhookTestSchema, "What the receiver answered"),
      ...errorResponses(400, 403, 404, 409, 422),
      ...unavailable,
    },
  }),
  attempts: apiRoute({
    ...requires("developer", { orgWide: true }),
    method: "get",
    path: "/v1/webhook-endpoints/{id}/attempts",
    tags: TAG,
    operationId: "listWebhookAttempts",
    summary: "List an endpoint's delivery attempts, newest first (30 days)",
    description:
      "Every HTTP attempt of the last 30 days: status, latency, error code and the answer's first bytes.",
    request: { params: Params, query: PageQuerySchema },
    responses: {
      200: json(listOf(WebhookAttemptSchema, "WebhookAttemptList"), "A page of attempts"),
      ...errorResponses(403, 404),
    },
  }),
  messages: apiRoute({
    ...requires("developer", { orgWide: true }),
    method: "get",
    path: "/v1/webhook-endpoints/{id}/messages",
    tags: TAG,
    operationId: "listWebhookMessages",
    summary: "List the messages sent (or to send) to an endpoint, newest first, with their delivery status",
    description: "One row per event for this endpoint: its type, payload and delivery status (`?status=`).",
    request: { params: Params, query: MessageQuery },
    responses: {
      200: json(listOf(WebhookMessageSchema, "WebhookMessageList"), "A page of messages"),
      ...errorResponses(403, 404),
    },
  }),
  resend: apiRoute({
    ...requires("admin", { orgWide: true }),
    method: "post",
    path: "/v1/webhook-endpoints/{id}/messages/{messageId}/resend",
    tags: TAG,
    operationId: "resendWebhookMessage",
    summary: "Send a message to this endpoint again",
    description:
      "Puts the message back in line for this endpoint (pending, due now), whatever its delivery's state; it keeps its `webhook-id`. 409 when the endpoint is disabled.",
    request: { params: MessageParams, headers: IdempotencyHeaderSchema },
    responses: {
      202: json(WebhookMessageSchema, "Queued again"),
      ...errorResponses(403, 404, 409, 422),
    },
  }),
};

export function registerWebhookEndpointRoutes(app: OpenAPIHono<ApiEnv>) {
  const keys = (c: { env: ApiEnv["Bindings"] }) => () => parseKeyring(c.env);
  const urls = (c: { env: ApiEnv["Bindings"] }) => ({
    allowLocalHttp: parseEnv(webhookVarsSchema, c.env).WEBHOOK_ALLOW_LOCAL_HTTP === "true",
  });

  app.openapi(routes.eventTypes, (c) =>
    query(c, async () =>
      c.json(
        { object: "list" as const, data: webhookEventCatalogue(), hasMore: false as const, nextCursor: null },
        200,
      ),
    ),
  );

  app.openapi(routes.create, (c) =>
    mutation(c, async (ctx) => {
      const created = await createWebhookEndpoint(ctx, c.req.valid("json"), { keys: keys(c), urls: urls(c) });
      return c.json({ ...webhookEndpointJson(created.endpoint), secret: created.secret }, 201);
    }),
  );

  app.openapi(routes.list, (c) =>
    query(c, async (ctx) => {
      const { limit, starting_after } = c.req.valid("query");
      const result = await listWebhookEndpoints(ctx, { limit, startingAfter: starting_after });
      return c.json(page({ data: result.data.map(webhookEndpointJson), hasMore: result.hasMore }), 200);
    }),
  );

  app.openapi(routes.get, (c) =>
    query(c, async (ctx) =>
      c.json(webhookEndpointJson(await visibleEndpoint(ctx, c.req.valid("param").id)), 200),
    ),
  );

  app.openapi(routes.update, (c) =>
    mutation(c, async (ctx) => {
      const changed = await changeWebhookEndpoint(ctx, c.req.valid("param").id, c.req.valid("json"), {
        urls: urls(c),
      });
      return c.json(webhookEndpointJson(changed), 200);
    }),
  );

  app.openapi(routes.delete, (c) =>
    mutation(c, async (ctx) => {
      await deleteWebhookEndpoint(ctx, c.req.valid("param").id);
      return c.body(null, 204);
    }),
  );

  app.openapi(routes.rotate, (c) =>
    mutation(c, async (ctx) => {
      // The body is optional: no body means the default grace period.
      const grace = c.req.valid("json")?.gracePeriodSeconds ?? L.defaultRotationGraceSeconds;
      const rotated = await rotateWebhookSecret(ctx, c.req.valid("param").id, grace, keys(c));
      return c.json({ ...webhookEndpointJson(rotated.endpoint), secret: rotated.secret }, 201);
    }),
  );

  // No transaction is held while the receiver answers (mutationWithCall): load, call, record.
  app.openapi(routes.test, (c) => {
    const id = c.req.valid("param").id;
    const now = c.get("now");
    return mutationWithCall(c, {
      load: (ctx) => loadWebhookTest(ctx, id, keys(c)),
      call: (loaded) => {
        const vars = parseEnv(webhookVarsSchema, c.env);
        return sendWebhookTest(loaded, now, {
          timeoutMs: vars.WEBHOOK_TEST_TIMEOUT_MS,
          allowLocalHttp: vars.WEBHOOK_ALLOW_LOCAL_HTTP === "true",
        });
      },
      record: async (ctx, answer) => {
        await recordWebhookTest(ctx, answer);
        return c.json(answer, 200);
      },
    });
  });

  app.openapi(routes.attempts, (c) =>
    query(c, async (ctx) => {
      const { limit, starting_after } = c.req.valid("query");
      const result = await listEndpointAttempts(ctx, c.req.valid("param").id, {
        limit,
        startingAfter: starting_after,
      });
      return c.json(page({ data: result.data.map(webhookAttemptJson), hasMore: result.hasMore }), 200);
    }),
  );

  app.openapi(routes.messages, (c) =>
    query(c, async (ctx) => {
      const { limit, starting_after, status } = c.req.valid("query");
      const result = await listEndpointMessages(ctx, c.req.valid("param").id, {
        limit,
        startingAfter: starting_after,
        status,
      });
      return c.json(page({ data: result.data.map(webhookDeliveryJson), hasMore: result.hasMore }), 200);
    }),
  );

  app.openapi(routes.resend, (c) =>
    mutation(c, async (ctx) => {
      const { id, messageId } = c.req.valid("param");
      return c.json(webhookDeliveryJson(await resendWebhookMessage(ctx, id, messageId)), 202);
    }),
  );
}
