import { createRoute, type OpenAPIHono, z } from "@hono/zod-openapi";
import {
  type ApiKey,
  createApiKey,
  getApiKey,
  listApiKeys,
  MAX_ROTATION_GRACE_SECONDS,
  type RevokeRefusal,
  revokeApiKey,
  rotateApiKey,
} from "../../../functions/api/apiKeys";
import { getProject } from "../../../functions/api/projects";
import { ApiError } from "../../../shared/errors";
import { hasRole, ROLES } from "../../../shared/roles";
import { requires } from "../access";
import type { ApiEnv } from "../context";
import { audit, mutation, query } from "../handlers";
import {
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

function apiKeyJson(k: ApiKey) {
  return {
    id: k.id,
    object: "api_key" as const,
    name: k.name,
    role: k.role,
    projectId: k.projectId,
    mode: k.mode,
    displayPrefix: k.displayPrefix,
    createdAt: k.createdAt.toISOString(),
    expiresAt: k.expiresAt?.toISOString() ?? null,
    revokedAt: k.revokedAt?.toISOString() ?? null,
    rotatedTo: k.rotatedTo,
  };
}

const routes = {
  create: createRoute({
    ...requires("admin", { orgWide: true }),
    method: "post",
    path: "/v1/api-keys",
    tags: ["API keys"],
    summary: "Create an API key (the secret is in this response only)",
    request: {
      headers: IdempotencyHeaderSchema,
      body: { content: { "application/json": { schema: CreateApiKeySchema } }, required: true },
    },
    responses: {
      201: json(CreatedApiKeySchema, "The key, with its secret"),
      ...errorResponses(400, 403, 404, 409, 422),
    },
  }),
  list: createRoute({
    ...requires("admin", { orgWide: true }),
    method: "get",
    path: "/v1/api-keys",
    tags: ["API keys"],
    summary: "List API keys, newest first (never their secrets)",
    request: { query: PageQuerySchema },
    responses: {
      200: json(listOf(ApiKeySchema, "ApiKeyList"), "A page of keys"),
      ...errorResponses(400, 403),
    },
  }),
  rotate: createRoute({
    ...requires("admin", { orgWide: true }),
    method: "post",
    path: "/v1/api-keys/{keyId}/rotate",
    tags: ["API keys"],
    summary: "Rotate: a new secret now; the old one works for the grace period, then stops",
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
  revoke: createRoute({
    ...requires("admin", { orgWide: true }),
    method: "post",
    path: "/v1/api-keys/{keyId}/revoke",
    tags: ["API keys"],
    summary:
      "Revoke a key: it stops working immediately (not above the caller's role; never the last owner key)",
    request: { params: KeyParams, headers: IdempotencyHeaderSchema },
    responses: { 200: json(ApiKeySchema, "The revoked key"), ...errorResponses(403, 404, 409, 422) },
  }),
};

/** A key may not hand out (or take away) more than it has: no role above its own. */
function checkGrant(role: ApiKey["role"], ownRole: ApiKey["role"]) {
  if (!hasRole(ownRole, role))
    throw new ApiError("forbidden", `A ${ownRole} key cannot create, rotate or revoke a ${role} key.`);
}

export function registerApiKeyRoutes(app: OpenAPIHono<ApiEnv>) {
  app.openapi(routes.create, (c) =>
    mutation(c, async (s) => {
      const input = c.req.valid("json");
      checkGrant(input.role, c.get("auth").role);
      if (input.projectId && !(await getProject(s.tx, input.projectId))) {
        throw new ApiError("not_found", `No project ${input.projectId}.`);
      }
      const created = await createApiKey(s.tx, s.orgId, input, s.now);
      await audit(s, "api_key.created", { type: "api_key", id: created.id }, { after: apiKeyJson(created) });
      return c.json({ ...apiKeyJson(created), secret: created.secret }, 201);
    }),
  );

  app.openapi(routes.list, (c) =>
    query(c, async (s) => {
      const { limit, starting_after } = c.req.valid("query");
      const result = await listApiKeys(s.tx, { limit, startingAfter: starting_after });
      return c.json(page({ data: result.data.map(apiKeyJson), hasMore: result.hasMore }), 200);
    }),
  );

  app.openapi(routes.rotate, (c) =>
    mutation(c, async (s) => {
      const { keyId } = c.req.valid("param");
      // The body is optional: no body means "stop the old secret now".
      const gracePeriodSeconds = c.req.valid("json")?.gracePeriodSeconds ?? 0;
      const current = await getApiKey(s.tx, keyId);
      if (!current) throw new ApiError("not_found", `No API key ${keyId}.`);
      checkGrant(current.role, c.get("auth").role);
      const rotated = await rotateApiKey(s.tx, s.orgId, keyId, gracePeriodSeconds, s.now);
      if (!rotated)
        throw new ApiError("conflict", `API key ${keyId} is revoked or expired; create a new key instead.`);
      await audit(
        s,
        "api_key.created",
        { type: "api_key", id: rotated.created.id },
        { after: apiKeyJson(rotated.created) },
      );
      await audit(
        s,
        "api_key.rotated",
        { type: "api_key", id: keyId },
        { before: apiKeyJson(current), after: apiKeyJson(rotated.old) },
      );
      return c.json({ ...apiKeyJson(rotated.created), secret: rotated.created.secret }, 201);
    }),
  );

  app.openapi(routes.revoke, (c) =>
    mutation(c, async (s) => {
      const { keyId } = c.req.valid("param");
      const target = await getApiKey(s.tx, keyId);
      if (!target) throw new ApiError("not_found", `No API key ${keyId}.`);
      // Revoking is as strong as creating: an admin key cannot revoke an owner key.
      checkGrant(target.role, c.get("auth").role);
      const revoked = await revokeApiKey(s.tx, s.orgId, keyId, s.now);
      if ("refused" in revoked) throw revokeRefusal(revoked.refused, keyId);
      await audit(
        s,
        "api_key.revoked",
        { type: "api_key", id: keyId },
        { before: apiKeyJson(revoked.before), after: apiKeyJson(revoked.after) },
      );
      return c.json(apiKeyJson(revoked.after), 200);
    }),
  );
}

function revokeRefusal(refused: RevokeRefusal, keyId: string): ApiError {
  switch (refused) {
    case "not_found":
      return new ApiError("not_found", `No API key ${keyId}.`);
    case "already_revoked":
      return new ApiError("conflict", `API key ${keyId} is already revoked or expired.`);
    case "last_owner_key":
      return new ApiError(
        "conflict",
        "This is the org's last live owner key; create another owner key before revoking it.",
      );
  }
}
