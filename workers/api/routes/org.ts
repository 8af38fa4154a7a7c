import { type OpenAPIHono, z } from "@hono/zod-openapi";
import { changeOrg, orgJson, ownOrg } from "../../../functions/org/verbs";
import { requires } from "../access";
import type { ApiEnv } from "../context";
import { mutation, query } from "../handlers";
import { apiRoute, dateTime, errorResponses, IdempotencyHeaderSchema, json } from "../schemas";

export const OrgSchema = z
  .object({
    id: z.string().openapi({ example: "org_3kTMd9WqLx2vRb7nYp4A" }),
    object: z.literal("org"),
    name: z.string(),
    createdAt: dateTime(),
  })
  .openapi("Org");

const UpdateOrgSchema = z
  .object({ name: z.string().trim().min(1).max(200).optional() })
  .strict()
  .refine((patch) => Object.keys(patch).length > 0, { message: "Send at least one field to change: name." })
  .openapi("UpdateOrg", { example: { name: "Acme Inc." } });

const get = apiRoute({
  ...requires("read_only"),
  method: "get",
  path: "/v1/org",
  tags: ["Org"],
  operationId: "getOrg",
  summary: "Get the org this API key belongs to",
  description:
    "Returns the org the calling API key belongs to. Any key may read it, project-restricted ones included.",
  responses: { 200: json(OrgSchema, "The org"), ...errorResponses() },
});

const update = apiRoute({
  ...requires("owner", { orgWide: true }),
  method: "patch",
  path: "/v1/org",
  tags: ["Org"],
  operationId: "updateOrg",
  summary: "Update the org (owner keys only; not with a project-restricted key)",
  description: "Renames the org. Owner keys only, and not a project-restricted one.",
  request: {
    headers: IdempotencyHeaderSchema,
    body: { content: { "application/json": { schema: UpdateOrgSchema } }, required: true },
  },
  responses: { 200: json(OrgSchema, "The org"), ...errorResponses(400, 403, 409, 422) },
});

export function registerOrgRoutes(app: OpenAPIHono<ApiEnv>) {
  // Any key may read its own org, project-restricted ones included: it is the key's own context.
  app.openapi(get, (c) => query(c, async (ctx) => c.json(orgJson(await ownOrg(ctx)), 200)));

  app.openapi(update, (c) =>
    mutation(c, async (ctx) => c.json(orgJson(await changeOrg(ctx, c.req.valid("json"))), 200)),
  );
}
