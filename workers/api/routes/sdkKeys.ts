import { type OpenAPIHono, z } from "@hono/zod-openapi";
import {
  issueSdkKey,
  listProjectSdkKeys,
  revokeProjectSdkKey,
  sdkKeyJson,
} from "../../../functions/sdkKeys/verbs";
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

export const SdkKeySchema = z
  .object({
    id: z.string().openapi({ example: "sdkkey_3kTq9bNf5XwVr2LmP8sD" }),
    object: z.literal("sdk_key"),
    projectId: z.string(),
    displayPrefix: z.string().openapi({ example: "lp_pk_4fGh" }),
    createdAt: dateTime(),
    revokedAt: dateTime().nullable(),
  })
  .openapi("SdkKey");

export const CreatedSdkKeySchema = SdkKeySchema.extend({
  secret: z
    .string()
    .nullable()
    .openapi({
      description:
        "The publishable key for the SDK (Authorization: Bearer … on POST /l/events). Shown once: never " +
        "stored, so an idempotent replay of this request answers `secret: null`.",
    }),
}).openapi("CreatedSdkKey");

const ProjectParams = z.object({
  projectId: z
    .string()
    .max(64)
    .openapi({ param: { name: "projectId", in: "path" } }),
});
const KeyParams = ProjectParams.extend({
  keyId: z
    .string()
    .max(64)
    .openapi({ param: { name: "keyId", in: "path" } }),
});

const routes = {
  create: apiRoute({
    ...requires("developer"),
    method: "post",
    path: "/v1/projects/{projectId}/sdk-keys",
    tags: ["SDK keys"],
    operationId: "createSdkKey",
    summary: "Create a publishable SDK (ingest) key for a project; the secret is in this response only",
    description:
      "Issues a publishable SDK key (`lp_pk_…`) for sending events to POST /l/events. The secret is returned once; a replay carries `secret: null`.",
    request: { params: ProjectParams, headers: IdempotencyHeaderSchema },
    responses: {
      201: json(CreatedSdkKeySchema, "The key, with its secret"),
      ...errorResponses(403, 404, 409, 422),
    },
  }),
  list: apiRoute({
    ...requires("read_only"),
    method: "get",
    path: "/v1/projects/{projectId}/sdk-keys",
    tags: ["SDK keys"],
    operationId: "listSdkKeys",
    summary: "List a project's SDK keys, newest first",
    description:
      "Lists a project's SDK keys, newest first, with their display prefix and state; never a secret.",
    request: { params: ProjectParams, query: PageQuerySchema },
    responses: {
      200: json(listOf(SdkKeySchema, "SdkKeyList"), "A page of SDK keys"),
      ...errorResponses(400, 404),
    },
  }),
  revoke: apiRoute({
    ...requires("developer"),
    method: "post",
    path: "/v1/projects/{projectId}/sdk-keys/{keyId}/revoke",
    tags: ["SDK keys"],
    operationId: "revokeSdkKey",
    summary: "Revoke an SDK key (ingest refuses it within 5 s, the edge key cache's lifetime)",
    description:
      "Revokes an SDK key. Ingest isolates cache keys for 5 s, so events sent with it in that time are still accepted.",
    request: { params: KeyParams, headers: IdempotencyHeaderSchema },
    responses: { 200: json(SdkKeySchema, "The revoked key"), ...errorResponses(403, 404, 409, 422) },
  }),
};

export function registerSdkKeyRoutes(app: OpenAPIHono<ApiEnv>) {
  app.openapi(routes.create, (c) =>
    mutation(c, async (ctx) => {
      const created = await issueSdkKey(ctx, c.req.valid("param").projectId);
      return c.json({ ...sdkKeyJson(created), secret: created.secret }, 201);
    }),
  );

  app.openapi(routes.list, (c) =>
    query(c, async (ctx) => {
      const { limit, starting_after } = c.req.valid("query");
      const result = await listProjectSdkKeys(ctx, c.req.valid("param").projectId, {
        limit,
        startingAfter: starting_after,
      });
      return c.json(page({ data: result.data.map(sdkKeyJson), hasMore: result.hasMore }), 200);
    }),
  );

  app.openapi(routes.revoke, (c) =>
    mutation(c, async (ctx) => {
      const { projectId, keyId } = c.req.valid("param");
      return c.json(sdkKeyJson(await revokeProjectSdkKey(ctx, projectId, keyId)), 200);
    }),
  );
}
