import { type OpenAPIHono, z } from "@hono/zod-openapi";
import {
  createOrgExport,
  getOrgExport,
  listOrgExports,
  MAX_EXPORT_PROJECTS,
} from "../../../functions/exports/verbs";
import { objectStoreFor } from "../../../functions/storage/config";
import { parseEnv } from "../../common/parseEnv";
import { requires } from "../access";
import type { ApiEnv } from "../context";
import { bucketVarsSchema } from "../env";
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

// Org export (portability): an owner or admin asks for an archive of the org's data; the Cron Worker's
// exporter builds it in bounded steps (functions/exports/runExport.ts); the finished archive is fetched
// through a signed URL made for each answer (24 h) while the object lives (7 days). Org-wide keys only: a
// project-restricted key must not take every project's data.

export const OrgExportSchema = z
  .object({
    id: z.string().openapi({ example: "exp_8GTkjDw1hpB2J55586HA" }),
    object: z.literal("org_export"),
    status: z.enum(["queued", "running", "succeeded", "failed", "expired"]),
    projects: z
      .array(z.string())
      .nullable()
      .openapi({ description: "The projects exported; null: every project." }),
    includeEvents: z.boolean(),
    counts: z.record(z.string(), z.number()).openapi({
      description:
        "Rows written per resource so far (the manifest has the final figures), and media_objects.",
      example: { projects: 2, audit_log: 130, media_objects: 4 },
    }),
    sizeBytes: z.number().int().nullable(),
    sha256: z.string().nullable().openapi({ description: "SHA-256 of the whole archive (hex)." }),
    errorCode: z.string().nullable().openapi({ description: "export_failed when status is failed." }),
    createdAt: dateTime(),
    startedAt: dateTime().nullable(),
    finishedAt: dateTime().nullable(),
    expiresAt: dateTime()
      .nullable()
      .openapi({ description: "When the archive is deleted (finishedAt + 7 days)." }),
    download: z
      .object({
        url: z.string().openapi({ description: "A signed GET URL; no API key needed." }),
        expiresAt: dateTime(),
      })
      .nullable()
      .openapi({
        description:
          "Only on GET /v1/org/exports/{id} of a succeeded export: a fresh URL per answer, valid 24 h (less " +
          "when the archive expires sooner).",
      }),
  })
  .openapi("OrgExport");

const CreateOrgExportSchema = z
  .object({
    projects: z
      .array(z.string().min(1).max(64))
      .min(1)
      .max(MAX_EXPORT_PROJECTS)
      .optional()
      .openapi({ description: `Only these projects (1–${MAX_EXPORT_PROJECTS}); default: every project.` }),
    includeEvents: z
      .boolean()
      .default(false)
      .openapi({ description: "Also export every project's events and end-user state." }),
  })
  .strict()
  .openapi("CreateOrgExport", { example: { includeEvents: true } });

const IdParams = z.object({
  id: z
    .string()
    .max(64)
    .openapi({ param: { name: "id", in: "path" } }),
});

const create = apiRoute({
  ...requires("admin", { orgWide: true }),
  method: "post",
  path: "/v1/org/exports",
  tags: ["Org"],
  operationId: "createOrgExport",
  summary: "Export the org's data (asynchronous; admin, org-wide keys)",
  description:
    "Starts an export of the org's data as one tar of gzip'd NDJSON files and a manifest (README, Org " +
    "export). Poll GET /v1/org/exports/{id} for its status and download URL. One export at a time per org.",
  request: {
    headers: IdempotencyHeaderSchema,
    body: { content: { "application/json": { schema: CreateOrgExportSchema } }, required: true },
  },
  responses: {
    202: json(OrgExportSchema, "The export job"),
    ...errorResponses(400, 403, 404, 409, 422),
  },
});

const get = apiRoute({
  ...requires("admin", { orgWide: true }),
  method: "get",
  path: "/v1/org/exports/{id}",
  tags: ["Org"],
  operationId: "getOrgExport",
  summary: "Get an export: status, counts and, when done, a download URL",
  description: "Returns an export job; a succeeded one carries a signed download URL valid 24 h.",
  request: { params: IdParams },
  responses: { 200: json(OrgExportSchema, "The export job"), ...errorResponses(403, 404) },
});

const list = apiRoute({
  ...requires("admin", { orgWide: true }),
  method: "get",
  path: "/v1/org/exports",
  tags: ["Org"],
  operationId: "listOrgExports",
  summary: "List the org's exports, newest first",
  description: "Lists export jobs, newest first (no download URLs: GET one export for its URL).",
  request: { query: PageQuerySchema },
  responses: {
    200: json(listOf(OrgExportSchema, "OrgExportList"), "A page of exports"),
    ...errorResponses(400, 403),
  },
});

export function registerOrgExportRoutes(app: OpenAPIHono<ApiEnv>) {
  app.openapi(create, (c) =>
    mutation(c, async (ctx) => c.json(await createOrgExport(ctx, c.req.valid("json")), 202)),
  );

  app.openapi(get, (c) =>
    query(c, async (ctx) => {
      const vars = parseEnv(bucketVarsSchema, c.env);
      const signer = objectStoreFor(vars, vars.EXPORT_BUCKET);
      return c.json(await getOrgExport(ctx, c.req.valid("param").id, signer), 200);
    }),
  );

  app.openapi(list, (c) =>
    query(c, async (ctx) => {
      const q = c.req.valid("query");
      return c.json(
        page(await listOrgExports(ctx, { limit: q.limit, startingAfter: q.starting_after })),
        200,
      );
    }),
  );
}
