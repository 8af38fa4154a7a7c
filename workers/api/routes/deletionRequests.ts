import { type OpenAPIHono, z } from "@hono/zod-openapi";
import {
  listVisibleDeletionRequests,
  requestDeletion,
  visibleDeletionRequest,
} from "../../../functions/deletionRequests/verbs";
import { liftProjectSuppression, listProjectSuppressions } from "../../../functions/suppressions/verbs";
import { phoneCountrySchema } from "../../../shared/schemas/sdk-event";
import { requires } from "../access";
import type { ApiEnv } from "../context";
import { mutation, query } from "../handlers";
import {
  apiRoute,
  dateTime,
  errorResponses,
  IdempotencyHeaderSchema,
  json,
  listOf,
  PageQuerySchema,
  page,
} from "../schemas";
import { UserParams } from "./userData";

// Deletion (data-subject requests). A request is recorded at once (202, status pending) and executed by
// the Cron Worker in bounded batches; its row is the receipt: status, per-data-class counts, timestamps,
// and only SHA-256 digests of the subject. Creating one or lifting a suppression needs the admin role;
// reading receipts needs developer.

const sha256 = z.string().regex(/^[0-9a-fA-F]{64}$/, "must be a SHA-256 hex digest");

export const DeletionRequestSchema = z
  .object({
    id: z.string().openapi({ example: "delreq_8GTkjDw1hpB2J55586HA" }),
    object: z.literal("deletion_request"),
    projectId: z.string(),
    status: z.enum(["pending", "running", "completed", "failed"]),
    subject: z
      .object({
        userIdSha256: z.string().nullable(),
        emailSha256: z.string().nullable(),
        phoneSha256: z.string().nullable(),
      })
      .openapi({
        description: "SHA-256 digests of the identifiers named (re-hash to verify); never plaintext.",
      }),
    suppress: z.boolean().openapi({ description: "Later events for this subject are dropped at ingest." }),
    deleted: z
      .object({
        events: z.number().int(),
        users: z.number().int(),
        attributions: z.number().int().openapi({ description: "Apple Search Ads attribution records." }),
        deadLetters: z
          .number()
          .int()
          .openapi({ description: "Relay dead-letter batches that held one of the subject's events." }),
        deadLetteredEvents: z.number().int().openapi({
          description: "The subject's events removed from dead letters kept in object storage.",
        }),
      })
      .openapi({
        description:
          "Rows removed so far: sdk_events, sdk_users, apple_attributions and relay_dead_letters (whole batches).",
      }),
    retained: z.object({ eventDailyCounts: z.string() }),
    failureReason: z.string().nullable(),
    requestedAt: dateTime(),
    startedAt: dateTime().nullable(),
    finishedAt: dateTime().nullable(),
    receiptExpiresAt: dateTime()
      .nullable()
      .openapi({ description: "This receipt is purged then (finishedAt + 730 days)." }),
  })
  .openapi("DeletionRequest");

// DELETE carries no body (clients often send Content-Type: application/json with none): options are query
// parameters. "true"/"false" only, so a typo is a 400 rather than a silent false.
const DeleteUserQuery = z.object({
  suppress: z.enum(["true", "false"]).default("false").openapi({
    description: "true: also drop this user's later events at ingest until the suppression is lifted.",
  }),
});

const CreateDeletionSchema = z
  .object({
    userId: z.string().min(1).max(256).optional(),
    email: z
      .string()
      .min(1)
      .max(320)
      .optional()
      .openapi({ description: "Hashed here, never stored or logged." }),
    phone: z
      .string()
      .min(1)
      .max(64)
      .optional()
      .openapi({
        description:
          "Hashed here as at ingest (SHA-256 of the E.164 digits, without +), never stored or logged. " +
          "A number without its country code needs phoneCountry, else it is hashed as its digits as sent.",
      }),
    phoneCountry: phoneCountrySchema.optional().openapi({
      description: "ISO 3166-1 alpha-2 country in which a national-format phone is read (phone only).",
      example: "US",
    }),
    emailSha256: sha256.optional(),
    phoneSha256: sha256.optional(),
    suppress: z.boolean().default(false),
  })
  .strict()
  .refine((b) => !(b.email && b.emailSha256) && !(b.phone && b.phoneSha256), {
    message: "Send an email or its SHA-256, not both (same for phone).",
  })
  .refine((b) => b.userId || b.email || b.phone || b.emailSha256 || b.phoneSha256, {
    message: "Name the subject: userId, email, phone, emailSha256 or phoneSha256.",
  })
  .refine((b) => b.phoneCountry === undefined || b.phone !== undefined, {
    message: "phoneCountry applies to a raw phone only.",
    path: ["phoneCountry"],
  })
  .openapi("CreateDeletionRequest", {
    example: {
      emailSha256: "836f82db99121b3481011f16b49dfa5fbc714a0d1b1b9f784a1ebbbf5b39577f",
      suppress: true,
    },
  });

const ListQuery = PageQuerySchema.extend({
  status: z.enum(["pending", "running", "completed", "failed"]).optional(),
  project_id: z.string().max(64).optional(),
});

const SuppressionParams = z.object({
  projectId: UserParams.shape.projectId,
  kind: z.enum(["users", "emails", "phones"]).openapi({ param: { name: "kind", in: "path" } }),
  value: z
    .string()
    .min(1)
    .max(256)
    .openapi({
      param: { name: "value", in: "path" },
      description: "users: the user id; emails/phones: the SHA-256 digest (raw values never go in a URL).",
    }),
});

const accepted = { 202: json(DeletionRequestSchema, "The deletion request (new, or the one already open)") };

const deleteUser = apiRoute({
  ...requires("admin"),
  method: "delete",
  path: "/v1/projects/{projectId}/events/users/{userId}",
  tags: ["Data-subject requests"],
  operationId: "deleteUserData",
  summary: "Erase one end user's events and state (asynchronous)",
  description:
    "Opens a deletion request that erases one end user's events and state; the work runs asynchronously and the receipt (GET /v1/deletion-requests/{id}) shows its progress. `suppress=true` also drops the user's later events at ingest.",
  request: {
    params: UserParams,
    query: DeleteUserQuery,
    headers: IdempotencyHeaderSchema,
  },
  responses: { ...accepted, ...errorResponses(400, 403, 404, 409, 422) },
});

const createByIdentifier = apiRoute({
  ...requires("admin"),
  method: "post",
  path: "/v1/projects/{projectId}/deletion-requests",
  tags: ["Data-subject requests"],
  operationId: "createDeletionRequest",
  summary: "Erase by user id and/or hashed email or phone (asynchronous)",
  description:
    "Opens a deletion request by user id and/or email or phone (raw or SHA-256; raw values are hashed and never stored). Runs asynchronously; an open request for the same subject is returned instead of a new one.",
  request: {
    params: UserParams.pick({ projectId: true }),
    headers: IdempotencyHeaderSchema,
    body: { content: { "application/json": { schema: CreateDeletionSchema } }, required: true },
  },
  responses: { ...accepted, ...errorResponses(400, 403, 404, 409, 422) },
});

const get = apiRoute({
  ...requires("developer"),
  method: "get",
  path: "/v1/deletion-requests/{id}",
  tags: ["Data-subject requests"],
  operationId: "getDeletionRequest",
  summary: "Get a deletion request (the receipt)",
  description: "Returns a deletion request: its state, what it named (as digests) and what was erased.",
  request: {
    params: z.object({
      id: z
        .string()
        .max(64)
        .openapi({ param: { name: "id", in: "path" } }),
    }),
  },
  responses: { 200: json(DeletionRequestSchema, "The deletion request"), ...errorResponses(404) },
});

const list = apiRoute({
  ...requires("developer"),
  method: "get",
  path: "/v1/deletion-requests",
  tags: ["Data-subject requests"],
  operationId: "listDeletionRequests",
  summary: "List deletion requests, newest first",
  description: "Lists the org's deletion requests, newest first.",
  request: { query: ListQuery },
  responses: {
    200: json(listOf(DeletionRequestSchema, "DeletionRequestList"), "A page of deletion requests"),
    ...errorResponses(400),
  },
});

const lift = apiRoute({
  ...requires("admin"),
  method: "delete",
  path: "/v1/projects/{projectId}/suppressions/{kind}/{value}",
  tags: ["Data-subject requests"],
  operationId: "liftSuppression",
  summary: "Lift a suppression: later events for this identifier are stored again",
  description:
    "Lifts a suppression made by a deletion request: later events for this identifier are stored again. Past events are not restored.",
  request: { params: SuppressionParams, headers: IdempotencyHeaderSchema },
  responses: { 204: { description: "Lifted" }, ...errorResponses(400, 403, 404, 409, 422) },
});

export const SuppressionSchema = z
  .object({
    object: z.literal("suppression"),
    identifierType: z.enum(["user_id", "email", "phone"]),
    identifierSha256: z
      .string()
      .openapi({ description: "SHA-256 of the user id, or the email/phone digest." }),
    deletionRequestId: z.string().nullable(),
    createdAt: dateTime(),
  })
  .openapi("Suppression");

const listSuppressionsRoute = apiRoute({
  ...requires("developer"),
  method: "get",
  path: "/v1/projects/{projectId}/suppressions",
  tags: ["Data-subject requests"],
  operationId: "listSuppressions",
  summary: "List a project's active suppressions, newest first (digests only)",
  description: "Lists a project's active suppressions, newest first, as identifier digests only.",
  request: {
    params: UserParams.pick({ projectId: true }),
    query: PageQuerySchema.extend({
      starting_after: z
        .string()
        .max(64)
        .optional()
        .openapi({ description: "The identifierSha256 of the last item of the previous page." }),
    }),
  },
  responses: {
    200: json(listOf(SuppressionSchema, "SuppressionList"), "A page of suppressions"),
    ...errorResponses(400, 403, 404),
  },
});

export function registerDeletionRequestRoutes(app: OpenAPIHono<ApiEnv>) {
  app.openapi(deleteUser, (c) =>
    mutation(c, async (ctx) => {
      const { projectId, userId } = c.req.valid("param");
      const { suppress } = c.req.valid("query");
      return c.json(await requestDeletion(ctx, projectId, { userId }, suppress === "true"), 202);
    }),
  );

  app.openapi(createByIdentifier, (c) =>
    mutation(c, async (ctx) => {
      const body = c.req.valid("json");
      const request = await requestDeletion(
        ctx,
        c.req.valid("param").projectId,
        {
          userId: body.userId,
          email: body.email ?? body.emailSha256,
          phone: body.phone ?? body.phoneSha256,
          phoneCountry: body.phoneCountry,
        },
        body.suppress,
      );
      return c.json(request, 202);
    }),
  );

  app.openapi(get, (c) =>
    query(c, async (ctx) => c.json(await visibleDeletionRequest(ctx, c.req.valid("param").id), 200)),
  );

  app.openapi(list, (c) =>
    query(c, async (ctx) => {
      const { limit, starting_after, status, project_id } = c.req.valid("query");
      const result = await listVisibleDeletionRequests(ctx, {
        limit,
        startingAfter: starting_after,
        status,
        projectId: project_id,
      });
      return c.json(page(result), 200);
    }),
  );

  app.openapi(listSuppressionsRoute, (c) =>
    query(c, async (ctx) => {
      const { limit, starting_after } = c.req.valid("query");
      const result = await listProjectSuppressions(ctx, c.req.valid("param").projectId, {
        limit,
        startingAfter: starting_after,
      });
      const last = result.data.at(-1);
      return c.json(
        {
          object: "list" as const,
          data: result.data,
          hasMore: result.hasMore,
          nextCursor: result.hasMore && last ? last.identifierSha256 : null,
        },
        200,
      );
    }),
  );

  app.openapi(lift, (c) =>
    mutation(c, async (ctx) => {
      const { projectId, kind, value } = c.req.valid("param");
      await liftProjectSuppression(ctx, projectId, kind, value);
      return c.body(null, 204);
    }),
  );
}
