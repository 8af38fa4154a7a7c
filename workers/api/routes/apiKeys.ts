import { type OpenAPIHono, z } from "@hono/zod-openapi";
import { MAX_ROTATION_GRACE_SECONDS } from "../../../functions/apiKeys/store";
import {
  apiKeyJson,
  issueApiKey,
  listOrgApiKeys,
  revokeOrgApiKey,
  rotateOrgApiKey,
} from "../../../functions/apiKeys/verbs";
import { ROLES } from "../../../shared/roles";
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

export const ApiKeySchema = z
  .object({
    id: z.string().openapi({ example: "key_5yqQ2hM8c6PnbX3vLk1R" }),
    object: z.literal("api_key"),
    name: z.string(),
    role: z.enum(ROLES),
    projectId: z
      .string()
      .nullable()
      .openapi({ description: "Set when the key may act on one project only." }),
    mode: z.enum(["live", "test"]),
    displayPrefix: z
      .string()
      .openapi({ example: "lp_live_7Hq2", description: "Enough of the secret to recognise it." }),
    createdAt: dateTime(),
    expiresAt: dateTime()
      .nullable()
      .openapi({ description: "After a rotation: when this old key stops working." }),
    revokedAt: dateTime().nullable(),
    rotatedTo: z.string().nullable(),
  })
  .openapi("ApiKey");

export const CreatedApiKeySchema = ApiKeySchema.extend({
  secret: z
    .string()
    .nullable()
    .openapi({
      description:
        "The secret. Shown once, in this response only: it is never stored, so an idempotent replay of this " +
        "request (Idempotent-Replayed: true) answers `secret: null`. Rotate the key if the secret was lost.",
    }),
}).openapi("CreatedApiKey");

const CreateApiKeySchema = z
  .object({
    name: z.string().trim().min(1).max(200),
    role: z.enum(ROLES),
    projectId: z.string().max(64).nullable().optional(),
    mode: z.enum(["live", "test"]).default("live"),
  })
  .openapi("CreateApiKey", { example: { name: "CI deploys", role: "developer", mode: "live" } });

const RotateApiKeySchema = z
  .object({
    gracePeriodSeconds: z
      .number()
      .int()
      .min(0)
      .max(MAX_ROTATION_GRACE_SECONDS)
      .default(0)
      .openapi({ description: "How long the old secret keeps working (0 = stops now; at most 7 days)." }),
  })
  .openapi("RotateApiKey", { example: { gracePeriodSeconds: 3600 } });

const KeyParams = z.object({
  keyId: z
    .string()
    .max(64)
    .openapi({ param: { name: "keyId", in: "path" } }),
});

const routes = {
  create: apiRoute({
    ...requires("admin", { orgWide: true }),
    method: "post",
    path: "/v1/api-keys",
    tags: ["API keys"],
    operationId: "createApiKey",
    summary: "Create an API key (the secret is in this response only)",
    description:
      "Issues a secret API key with a role (not above the caller's) and an optional project restriction and expiry. The secret is returned once; a replay of this request carries `secret: null`.",
    request: {
      headers: IdempotencyHeaderSchema,
      body: { content: { "application/json": { schema: CreateApiKeySchema } }, required: true },
    },
    responses: {
      201: json(CreatedApiKeySchema, "The key, with its secret"),
      ...errorResponses(400, 403, 404, 409, 422),
    },
  }),
  list: apiRoute({
    ...requires("admin", { orgWide: true }),
    method: "get",
    path: "/v1/api-keys",
    tags: ["API keys"],
    operationId: "listApiKeys",
    summary: "List API keys, newest first (never their secrets)",
    description:
      "Lists the org's API keys, newest first, with their display prefix, role and state; never a secret.",
    request: { query: PageQuerySchema },
    responses: {
      200: json(listOf(ApiKeySchema, "ApiKeyList"), "A page of keys"),
      ...errorResponses(400, 403),
    },
  }),
  rotate: apiRoute({
    ...requires("admin", { orgWide: true }),
    method: "post",
    path: "/v1/api-keys/{keyId}/rotate",
    tags: ["API keys"],
    operationId: "rotateApiKey",
    summary: "Rotate: a new secret now; the old one works for the grace period, then stops",
    description:
      "Issues a new secret for a key; the old secret keeps working for `gracePeriodSeconds` (0–604800), then stops. The new secret is returned once.",
    request: {
      params: KeyParams,
      headers: IdempotencyHeaderSchema,
      body: { content: { "application/json": { schema: RotateApiKeySchema } }, required: false },
    },
    responses: {
      201: json(CreatedApiKeySchema, "The new key, with its secret"),
      ...errorResponses(400, 403, 404, 409, 422),
    },
  }),
  revoke: apiRoute({
    ...requires("admin", { orgWide: true }),
    method: "post",
    path: "/v1/api-keys/{keyId}/revoke",
    tags: ["API keys"],
    operationId: "revokeApiKey",
    summary:
      "Revoke a key: it stops working immediately (not above the caller's role; never the last owner key)",
    description:
      "Revokes a key at once. A key cannot revoke a key with a higher role, and the org's last live owner key cannot be revoked (409 conflict).",
    request: { params: KeyParams, headers: IdempotencyHeaderSchema },
    responses: { 200: json(ApiKeySchema, "The revoked key"), ...errorResponses(403, 404, 409, 422) },
  }),
};

export function registerApiKeyRoutes(app: OpenAPIHono<ApiEnv>) {
  app.openapi(routes.create, (c) =>
    mutation(c, async (ctx) => {
      const created = await issueApiKey(ctx, c.req.valid("json"));
      return c.json({ ...apiKeyJson(created), secret: created.secret }, 201);
    }),
  );

  app.openapi(routes.list, (c) =>
    query(c, async (ctx) => {
      const { limit, starting_after } = c.req.valid("query");
      const result = await listOrgApiKeys(ctx, { limit, startingAfter: starting_after });
      return c.json(page({ data: result.data.map(apiKeyJson), hasMore: result.hasMore }), 200);
    }),
  );

  app.openapi(routes.rotate, (c) =>
    mutation(c, async (ctx) => {
      // The body is optional: no body means "stop the old secret now".
      const gracePeriodSeconds = c.req.valid("json")?.gracePeriodSeconds ?? 0;
      const created = await rotateOrgApiKey(ctx, c.req.valid("param").keyId, gracePeriodSeconds);
      return c.json({ ...apiKeyJson(created), secret: created.secret }, 201);
    }),
  );

  app.openapi(routes.revoke, (c) =>
    mutation(c, async (ctx) =>
      c.json(apiKeyJson(await revokeOrgApiKey(ctx, c.req.valid("param").keyId)), 200),
    ),
  );
}
