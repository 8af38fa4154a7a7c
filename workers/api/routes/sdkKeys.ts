import { createRoute, type OpenAPIHono, z } from "@hono/zod-openapi";
import {
  createSdkKey,
  getSdkKey,
  listSdkKeys,
  revokeSdkKey,
  type SdkKey,
} from "../../../functions/tenancy/sdkKeys";
import { ApiError } from "../../../shared/errors";
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
import { visibleProject } from "./projects";

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

function sdkKeyJson(k: SdkKey) {
  return {
    id: k.id,
    object: "sdk_key" as const,
    projectId: k.projectId,
    displayPrefix: k.displayPrefix,
    createdAt: k.createdAt.toISOString(),
    revokedAt: k.revokedAt?.toISOString() ?? null,
  };
}

const routes = {
  create: createRoute({
    ...requires("developer"),
    method: "post",
    path: "/v1/projects/{projectId}/sdk-keys",
    tags: ["SDK keys"],
    summary: "Create a publishable SDK (ingest) key for a project; the secret is in this response only",
    request: { params: ProjectParams, headers: IdempotencyHeaderSchema },
    responses: {
      201: json(CreatedSdkKeySchema, "The key, with its secret"),
      ...errorResponses(403, 404, 409, 422),
    },
  }),
  list: createRoute({
    ...requires("read_only"),
    method: "get",
    path: "/v1/projects/{projectId}/sdk-keys",
    tags: ["SDK keys"],
    summary: "List a project's SDK keys, newest first",
    request: { params: ProjectParams, query: PageQuerySchema },
    responses: {
      200: json(listOf(SdkKeySchema, "SdkKeyList"), "A page of SDK keys"),
      ...errorResponses(400, 404),
    },
  }),
  revoke: createRoute({
    ...requires("developer"),
    method: "post",
    path: "/v1/projects/{projectId}/sdk-keys/{keyId}/revoke",
    tags: ["SDK keys"],
    summary: "Revoke an SDK key (ingest refuses it within 5 s, the edge key cache's lifetime)",
    request: { params: KeyParams, headers: IdempotencyHeaderSchema },
    responses: { 200: json(SdkKeySchema, "The revoked key"), ...errorResponses(403, 404, 409, 422) },
  }),
};

export function registerSdkKeyRoutes(app: OpenAPIHono<ApiEnv>) {
  app.openapi(routes.create, (c) =>
    mutation(c, async (s) => {
      const project = await visibleProject(s, c.req.valid("param").projectId);
      const created = await createSdkKey(s.tx, s.orgId, project.id);
      const key = sdkKeyJson(created);
      await audit(s, "sdk_key.created", { type: "sdk_key", id: created.id }, { after: key });
      return c.json({ ...key, secret: created.secret }, 201);
    }),
  );

  app.openapi(routes.list, (c) =>
    query(c, async (s) => {
      const project = await visibleProject(s, c.req.valid("param").projectId);
      const { limit, starting_after } = c.req.valid("query");
      const result = await listSdkKeys(s.tx, project.id, { limit, startingAfter: starting_after });
      return c.json(page({ data: result.data.map(sdkKeyJson), hasMore: result.hasMore }), 200);
    }),
  );

  app.openapi(routes.revoke, (c) =>
    mutation(c, async (s) => {
      const { projectId, keyId } = c.req.valid("param");
      await visibleProject(s, projectId);
      const before = await getSdkKey(s.tx, projectId, keyId);
      if (!before) throw new ApiError("not_found", `No SDK key ${keyId} in project ${projectId}.`);
      if (!(await revokeSdkKey(s.tx, keyId, s.now)))
        throw new ApiError("conflict", `SDK key ${keyId} is already revoked.`);
      const after = { ...before, revokedAt: s.now };
      await audit(
        s,
        "sdk_key.revoked",
        { type: "sdk_key", id: keyId },
        { before: sdkKeyJson(before), after: sdkKeyJson(after) },
      );
      return c.json(sdkKeyJson(after), 200);
    }),
  );
}
