import { type OpenAPIHono, z } from "@hono/zod-openapi";
import {
  ADS_CONTENT_STATUSES,
  adsContentJson,
  createAdsContent,
  deleteAdsContent,
  deleteProjectAdsContent,
  getAdsContent,
  listAdsContent,
  listProjectAdsContent,
  MAX_CONTAINERS_PER_ADS_CONTENT,
  PROJECT_ADS_CONTENT_STATUSES,
  projectAdsContentJson,
  putProjectAdsContent,
  updateAdsContent,
} from "../../../functions/content/adsContent";
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

// The org's creative library (ads content) and its use in projects. The library is org-wide (an entry may
// combine containers of several projects), so its routes refuse keys restricted to one project; a project's
// use of an entry is under the project. Reading needs read_only, changing needs developer.

export const AdsContentSchema = z
  .object({
    id: z.string().openapi({ example: "adc_4sV9qLm2Xc8RtY6pKw3N" }),
    object: z.literal("ads_content"),
    name: z.string(),
    status: z.enum(ADS_CONTENT_STATUSES),
    containerIds: z.array(z.string()).openapi({ description: "The entry's containers, in order." }),
    createdAt: dateTime(),
    updatedAt: dateTime(),
  })
  .openapi("AdsContent");

export const ProjectAdsContentSchema = z
  .object({
    id: z.string().openapi({ description: "The ads content's id (a project uses an entry once)." }),
    object: z.literal("project_ads_content"),
    projectId: z.string(),
    adsContentId: z.string(),
    status: z.enum(PROJECT_ADS_CONTENT_STATUSES),
    createdAt: dateTime(),
    updatedAt: dateTime(),
  })
  .openapi("ProjectAdsContent");

const name = z.string().trim().min(1).max(200).openapi({ example: "Spring launch reel" });
const containerIds = z
  .array(z.string().min(1).max(64))
  .max(MAX_CONTAINERS_PER_ADS_CONTENT)
  .openapi({
    description:
      `0–${MAX_CONTAINERS_PER_ADS_CONTENT} content container ids of the org, each once; the order is kept. ` +
      "An entry with none can only be a draft or archived (ready needs at least one).",
  });

const CreateAdsContentSchema = z
  .object({ name, containerIds, status: z.enum(ADS_CONTENT_STATUSES).optional() })
  .strict()
  .openapi("CreateAdsContent", {
    example: { name: "Spring launch reel", containerIds: ["ctr_4sV9qLm2Xc8RtY6pKw3N"] },
  });

const UpdateAdsContentSchema = z
  .object({
    name: name.optional(),
    status: z.enum(ADS_CONTENT_STATUSES).optional(),
    containerIds: containerIds.optional(),
  })
  .strict()
  .refine((p) => Object.keys(p).length > 0, "Send at least one of name, status, containerIds.")
  .openapi("UpdateAdsContent", { example: { status: "ready" } });

const PutProjectAdsContentSchema = z
  .object({ status: z.enum(PROJECT_ADS_CONTENT_STATUSES).default("active") })
  .strict()
  .openapi("PutProjectAdsContent", { example: { status: "active" } });

const IdParams = z.object({
  id: z
    .string()
    .max(64)
    .openapi({ param: { name: "id", in: "path" } }),
});
const ProjectParams = z.object({
  projectId: z
    .string()
    .max(64)
    .openapi({ param: { name: "projectId", in: "path" } }),
});
const UseParams = ProjectParams.extend({
  adsContentId: z
    .string()
    .max(64)
    .openapi({ param: { name: "adsContentId", in: "path" } }),
});

const routes = {
  create: apiRoute({
    ...requires("developer", { orgWide: true }),
    method: "post",
    path: "/v1/ads-content",
    tags: ["Ads content"],
    operationId: "createAdsContent",
    summary: "Add an entry to the org's creative library from content containers",
    description:
      "Creates an ads content entry (status draft unless given) from containers of the org, in the order " +
      "given. An id that names no container of the org is a 404 (not_found; details name its position).",
    request: {
      headers: IdempotencyHeaderSchema,
      body: { content: { "application/json": { schema: CreateAdsContentSchema } }, required: true },
    },
    responses: { 201: json(AdsContentSchema, "Created"), ...errorResponses(400, 403, 404, 409, 422) },
  }),
  list: apiRoute({
    ...requires("read_only", { orgWide: true }),
    method: "get",
    path: "/v1/ads-content",
    tags: ["Ads content"],
    operationId: "listAdsContent",
    summary: "List the org's creative library, newest first",
    description: "Lists ads content entries, optionally of one status.",
    request: {
      query: PageQuerySchema.extend({ status: z.enum(ADS_CONTENT_STATUSES).optional() }),
    },
    responses: {
      200: json(listOf(AdsContentSchema, "AdsContentList"), "A page of entries"),
      ...errorResponses(400, 403),
    },
  }),
  get: apiRoute({
    ...requires("read_only", { orgWide: true }),
    method: "get",
    path: "/v1/ads-content/{id}",
    tags: ["Ads content"],
    operationId: "getAdsContent",
    summary: "Get an ads content entry",
    description: "Returns one entry with its containers in order.",
    request: { params: IdParams },
    responses: { 200: json(AdsContentSchema, "The entry"), ...errorResponses(400, 403, 404) },
  }),
  update: apiRoute({
    ...requires("developer", { orgWide: true }),
    method: "patch",
    path: "/v1/ads-content/{id}",
    tags: ["Ads content"],
    operationId: "updateAdsContent",
    summary: "Rename an entry, change its status or replace its containers",
    description: "containerIds replaces the whole list (order kept).",
    request: {
      params: IdParams,
      headers: IdempotencyHeaderSchema,
      body: { content: { "application/json": { schema: UpdateAdsContentSchema } }, required: true },
    },
    responses: { 200: json(AdsContentSchema, "The entry"), ...errorResponses(400, 403, 404, 409, 422) },
  }),
  delete: apiRoute({
    ...requires("developer", { orgWide: true }),
    method: "delete",
    path: "/v1/ads-content/{id}",
    tags: ["Ads content"],
    operationId: "deleteAdsContent",
    summary: "Delete an entry and its use in every project (the containers stay)",
    description: "Deletes the entry; its containers are not touched.",
    request: { params: IdParams, headers: IdempotencyHeaderSchema },
    responses: { 204: { description: "Deleted" }, ...errorResponses(400, 403, 404, 409, 422) },
  }),
  listUses: apiRoute({
    ...requires("read_only"),
    method: "get",
    path: "/v1/projects/{projectId}/ads-content",
    tags: ["Ads content"],
    operationId: "listProjectAdsContent",
    summary: "List the ads content a project uses, newest first",
    description: "Each entry the project uses, with its status there (active or paused).",
    request: { params: ProjectParams, query: PageQuerySchema },
    responses: {
      200: json(listOf(ProjectAdsContentSchema, "ProjectAdsContentList"), "A page of uses"),
      ...errorResponses(400, 404),
    },
  }),
  putUse: apiRoute({
    ...requires("developer"),
    method: "put",
    path: "/v1/projects/{projectId}/ads-content/{adsContentId}",
    tags: ["Ads content"],
    operationId: "putProjectAdsContent",
    summary: "Use an entry in a project, or pause it there",
    description:
      "Creates the use (201) or changes its status (200). Activating needs the project's content layer " +
      "on (409 layer_disabled) and an entry that is not archived (409 conflict).",
    request: {
      params: UseParams,
      headers: IdempotencyHeaderSchema,
      body: { content: { "application/json": { schema: PutProjectAdsContentSchema } }, required: true },
    },
    responses: {
      200: json(ProjectAdsContentSchema, "Updated"),
      201: json(ProjectAdsContentSchema, "Created"),
      ...errorResponses(400, 403, 404, 409, 422),
    },
  }),
  deleteUse: apiRoute({
    ...requires("developer"),
    method: "delete",
    path: "/v1/projects/{projectId}/ads-content/{adsContentId}",
    tags: ["Ads content"],
    operationId: "deleteProjectAdsContent",
    summary: "Stop using an entry in a project",
    description: "Removes the entry from the project; the entry stays in the library.",
    request: { params: UseParams, headers: IdempotencyHeaderSchema },
    responses: { 204: { description: "Removed" }, ...errorResponses(400, 403, 404, 409, 422) },
  }),
};

export function registerAdsContentRoutes(app: OpenAPIHono<ApiEnv>) {
  app.openapi(routes.create, (c) =>
    mutation(c, async (ctx) => c.json(adsContentJson(await createAdsContent(ctx, c.req.valid("json"))), 201)),
  );

  app.openapi(routes.list, (c) =>
    query(c, async (ctx) => {
      const { limit, starting_after, status } = c.req.valid("query");
      const result = await listAdsContent(ctx, { limit, startingAfter: starting_after, status });
      return c.json(page({ data: result.data.map(adsContentJson), hasMore: result.hasMore }), 200);
    }),
  );

  app.openapi(routes.get, (c) =>
    query(c, async (ctx) => c.json(adsContentJson(await getAdsContent(ctx, c.req.valid("param").id)), 200)),
  );

  app.openapi(routes.update, (c) =>
    mutation(c, async (ctx) =>
      c.json(adsContentJson(await updateAdsContent(ctx, c.req.valid("param").id, c.req.valid("json"))), 200),
    ),
  );

  app.openapi(routes.delete, (c) =>
    mutation(c, async (ctx) => {
      await deleteAdsContent(ctx, c.req.valid("param").id);
      return c.body(null, 204);
    }),
  );

  app.openapi(routes.listUses, (c) =>
    query(c, async (ctx) => {
      const { limit, starting_after } = c.req.valid("query");
      const result = await listProjectAdsContent(ctx, c.req.valid("param").projectId, {
        limit,
        startingAfter: starting_after,
      });
      return c.json(page({ data: result.data.map(projectAdsContentJson), hasMore: result.hasMore }), 200);
    }),
  );

  app.openapi(routes.putUse, (c) =>
    mutation(c, async (ctx) => {
      const { projectId, adsContentId } = c.req.valid("param");
      const { use, created } = await putProjectAdsContent(
        ctx,
        projectId,
        adsContentId,
        c.req.valid("json").status,
      );
      return created ? c.json(projectAdsContentJson(use), 201) : c.json(projectAdsContentJson(use), 200);
    }),
  );

  app.openapi(routes.deleteUse, (c) =>
    mutation(c, async (ctx) => {
      const { projectId, adsContentId } = c.req.valid("param");
      await deleteProjectAdsContent(ctx, projectId, adsContentId);
      return c.body(null, 204);
    }),
  );
}
