import { type OpenAPIHono, z } from "@hono/zod-openapi";
import {
  addProject,
  changeProject,
  listVisibleProjects,
  projectJson,
  visibleProject,
} from "../../../functions/projects/verbs";
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

export const ProjectSchema = z
  .object({
    id: z.string().openapi({ example: "proj_8GTkjDw1hpB2J55586HA" }),
    object: z.literal("project"),
    name: z.string(),
    eventRetentionDays: z.number().int().openapi({ description: "Days SDK events are kept (30–400)." }),
    archived: z.boolean(),
    archivedAt: dateTime().nullable(),
    createdAt: dateTime(),
    updatedAt: dateTime(),
  })
  .openapi("Project");

const retention = z.number().int().min(30).max(400);
const CreateProjectSchema = z
  .object({
    name: z.string().trim().min(1).max(200),
    eventRetentionDays: retention.default(400),
  })
  .openapi("CreateProject", { example: { name: "iOS app", eventRetentionDays: 400 } });
const UpdateProjectSchema = z
  .object({ name: z.string().trim().min(1).max(200).optional(), eventRetentionDays: retention.optional() })
  .strict()
  .openapi("UpdateProject", { example: { eventRetentionDays: 90 } });
const ProjectParams = z.object({
  projectId: z
    .string()
    .max(64)
    .openapi({ param: { name: "projectId", in: "path" } }),
});

const create = apiRoute({
  ...requires("developer", { orgWide: true }),
  method: "post",
  path: "/v1/projects",
  tags: ["Projects"],
  operationId: "createProject",
  summary: "Create a project",
  description:
    "Creates a project in the caller's org. Org-wide keys only (developer or higher). Its events are kept `eventRetentionDays` days (default 400).",
  request: {
    headers: IdempotencyHeaderSchema,
    body: { content: { "application/json": { schema: CreateProjectSchema } }, required: true },
  },
  responses: { 201: json(ProjectSchema, "The project"), ...errorResponses(400, 403, 409, 422) },
});

const list = apiRoute({
  ...requires("read_only"),
  method: "get",
  path: "/v1/projects",
  tags: ["Projects"],
  operationId: "listProjects",
  summary: "List projects, newest first",
  description:
    "Lists the org's projects, newest first, archived ones included; a project-restricted key sees only its own project.",
  request: { query: PageQuerySchema },
  responses: {
    200: json(listOf(ProjectSchema, "ProjectList"), "A page of projects"),
    ...errorResponses(400),
  },
});

const get = apiRoute({
  ...requires("read_only"),
  method: "get",
  path: "/v1/projects/{projectId}",
  tags: ["Projects"],
  operationId: "getProject",
  summary: "Get a project",
  description:
    "Returns one project of the caller's org (404 for another org's project, or another project than a restricted key's).",
  request: { params: ProjectParams },
  responses: { 200: json(ProjectSchema, "The project"), ...errorResponses(404) },
});

const update = apiRoute({
  ...requires("developer"),
  method: "patch",
  path: "/v1/projects/{projectId}",
  tags: ["Projects"],
  operationId: "updateProject",
  summary: "Update a project (a retention change applies at the next retention run)",
  description:
    "Changes a project's name or retention. A shorter retention deletes older events at the next retention run.",
  request: {
    params: ProjectParams,
    headers: IdempotencyHeaderSchema,
    body: { content: { "application/json": { schema: UpdateProjectSchema } }, required: true },
  },
  responses: { 200: json(ProjectSchema, "The project"), ...errorResponses(400, 403, 404, 409, 422) },
});

const archiveRoute = (archived: boolean) =>
  apiRoute({
    ...requires("developer"),
    method: "post",
    path: `/v1/projects/{projectId}/${archived ? "archive" : "unarchive"}`,
    tags: ["Projects"],
    operationId: archived ? "archiveProject" : "unarchiveProject",
    summary: archived ? "Archive a project (its SDK keys stop ingesting)" : "Unarchive a project",
    description: archived
      ? "Archives a project: its SDK keys are refused at ingest (403 project_archived) within 5 s. Its data is kept."
      : "Unarchives a project: its SDK keys are accepted at ingest again within 5 s.",
    request: { params: ProjectParams, headers: IdempotencyHeaderSchema },
    responses: { 200: json(ProjectSchema, "The project"), ...errorResponses(403, 404, 409, 422) },
  });

export function registerProjectRoutes(app: OpenAPIHono<ApiEnv>) {
  app.openapi(create, (c) =>
    mutation(c, async (ctx) => c.json(projectJson(await addProject(ctx, c.req.valid("json"))), 201)),
  );

  app.openapi(list, (c) =>
    query(c, async (ctx) => {
      const { limit, starting_after } = c.req.valid("query");
      const result = await listVisibleProjects(ctx, { limit, startingAfter: starting_after });
      return c.json(page({ data: result.data.map(projectJson), hasMore: result.hasMore }), 200);
    }),
  );

  app.openapi(get, (c) =>
    query(c, async (ctx) =>
      c.json(projectJson(await visibleProject(ctx, c.req.valid("param").projectId)), 200),
    ),
  );

  app.openapi(update, (c) =>
    mutation(c, async (ctx) => {
      const project = await changeProject(ctx, c.req.valid("param").projectId, c.req.valid("json"));
      return c.json(projectJson(project), 200);
    }),
  );

  for (const archived of [true, false]) {
    app.openapi(archiveRoute(archived), (c) =>
      mutation(c, async (ctx) => {
        const project = await changeProject(ctx, c.req.valid("param").projectId, { archived });
        return c.json(projectJson(project), 200);
      }),
    );
  }
}
