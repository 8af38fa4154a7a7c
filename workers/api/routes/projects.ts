import { type OpenAPIHono, z } from "@hono/zod-openapi";
import { getProject, listProjects, updateProject } from "../../../functions/api/projects";
import { createProject, type Project } from "../../../functions/tenancy/createProject";
import { ApiError } from "../../../shared/errors";
import { requires } from "../access";
import type { ApiEnv } from "../context";
import { audit, mutation, query, type RequestScope } from "../handlers";
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

export function projectJson(p: Project) {
  return {
    id: p.id,
    object: "project" as const,
    name: p.name,
    eventRetentionDays: p.eventRetentionDays,
    archived: p.archivedAt !== null,
    archivedAt: p.archivedAt?.toISOString() ?? null,
    createdAt: p.createdAt.toISOString(),
    updatedAt: p.updatedAt.toISOString(),
  };
}

/** A project the caller may see: in its org (RLS) and, for a restricted key, its own project. Else 404. */
export async function visibleProject(s: RequestScope, projectId: string): Promise<Project> {
  const project = s.projectId && s.projectId !== projectId ? null : await getProject(s.tx, projectId);
  if (!project) throw new ApiError("not_found", `No project ${projectId}.`);
  return project;
}

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
    mutation(c, async (s) => {
      const input = c.req.valid("json");
      const project = await createProject(s.tx, s.orgId, input);
      await audit(s, "project.created", { type: "project", id: project.id }, { after: projectJson(project) });
      return c.json(projectJson(project), 201);
    }),
  );

  app.openapi(list, (c) =>
    query(c, async (s) => {
      const { limit, starting_after } = c.req.valid("query");
      const result = await listProjects(s.tx, { limit, startingAfter: starting_after, onlyId: s.projectId });
      return c.json(page({ data: result.data.map(projectJson), hasMore: result.hasMore }), 200);
    }),
  );

  app.openapi(get, (c) =>
    query(c, async (s) => c.json(projectJson(await visibleProject(s, c.req.valid("param").projectId)), 200)),
  );

  app.openapi(update, (c) =>
    mutation(c, async (s) => {
      const { projectId } = c.req.valid("param");
      await visibleProject(s, projectId);
      const changed = await updateProject(s.tx, projectId, c.req.valid("json"), s.now);
      if (!changed) throw new ApiError("not_found", `No project ${projectId}.`);
      await audit(
        s,
        "project.updated",
        { type: "project", id: projectId },
        {
          before: projectJson(changed.before),
          after: projectJson(changed.after),
        },
      );
      return c.json(projectJson(changed.after), 200);
    }),
  );

  for (const archived of [true, false]) {
    app.openapi(archiveRoute(archived), (c) =>
      mutation(c, async (s) => {
        const { projectId } = c.req.valid("param");
        await visibleProject(s, projectId);
        const changed = await updateProject(s.tx, projectId, { archived }, s.now);
        if (!changed) throw new ApiError("not_found", `No project ${projectId}.`);
        await audit(
          s,
          archived ? "project.archived" : "project.unarchived",
          { type: "project", id: projectId },
          {
            before: projectJson(changed.before),
            after: projectJson(changed.after),
          },
        );
        return c.json(projectJson(changed.after), 200);
      }),
    );
  }
}
