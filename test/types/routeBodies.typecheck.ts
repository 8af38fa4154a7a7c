import { OpenAPIHono } from "@hono/zod-openapi";
import { projectJson } from "../../functions/projects/verbs";
import type { ApiEnv } from "../../workers/api/context";
import { mutation, query } from "../../workers/api/handlers";
import { ProjectSchema } from "../../workers/api/routes/projects";
import { apiRoute, errorResponses, json } from "../../workers/api/schemas";

// Checked by `npm run typecheck`, never run. A handler's `c.json(body, status)` is checked against the
// schema its route declares for that status, through the query()/mutation() wrappers. If that typing is
// lost (a helper erasing the schema's type again), the `@ts-expect-error` lines below stop erroring, and
// an unused `@ts-expect-error` fails the typecheck.

const route = apiRoute({
  method: "get",
  path: "/v1/projects/{projectId}/typed",
  operationId: "typedBodyCheck",
  summary: "A route for the type test",
  description: "Declares one body, a Project, for 200.",
  responses: { 200: json(ProjectSchema, "The project"), ...errorResponses(404) },
});

const project = projectJson({
  id: "proj_1",
  orgId: "org_1",
  name: "iOS app",
  eventRetentionDays: 400,
  archivedAt: null,
  deletedAt: null,
  createdAt: new Date(0),
  updatedAt: new Date(0),
});

const app = new OpenAPIHono<ApiEnv>();

// The declared body and status: accepted.
app.openapi(route, (c) => query(c, async () => c.json(project, 200)));
app.openapi(route, (c) => mutation(c, async () => c.json(project, 200)));

// A field of the wrong type.
// @ts-expect-error archived is a boolean in ProjectSchema
app.openapi(route, (c) => query(c, async () => c.json({ ...project, archived: "no" }, 200)));

// A field missing.
// @ts-expect-error ProjectSchema requires every field
app.openapi(route, (c) => mutation(c, async () => c.json({ id: project.id, object: "project" }, 200)));

// A status the route does not declare.
// @ts-expect-error 201 is not among the route's responses
app.openapi(route, (c) => query(c, async () => c.json(project, 201)));

// An error body where a Project is declared.
// @ts-expect-error the 200 body is a Project, not an Error
app.openapi(route, (c) => query(c, async () => c.json({ error: { code: "not_found" } }, 200)));
