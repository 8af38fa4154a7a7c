import { type OpenAPIHono, z } from "@hono/zod-openapi";
import {
  readOrgDeletionReceipt,
  requestOrgDeletion,
  requestProjectDeletion,
  visibleProjectDeletion,
} from "../../../functions/lifecycle/verbs";
import { ApiError } from "../../../shared/errors";
import { requires } from "../access";
import type { ApiEnv } from "../context";
import { mutation, query } from "../handlers";
import { enforceRateLimit } from "../middleware";
import { apiRoute, dateTime, errorResponses, IdempotencyHeaderSchema, json } from "../schemas";

// Project deletion, org deletion and the org-deletion receipt (README, "Project and org deletion").

const Counts = z.record(z.string(), z.number().int()).openapi({
  description:
    "What was erased so far, per class: rows per table, objects per bucket (`objects:<bucket>`). Never a value.",
  example: { sdk_events: 120000, sdk_users: 5000, "objects:media": 12 },
});

export const ProjectDeletionSchema = z
  .object({
    id: z.string().openapi({ example: "pdel_8GTkjDw1hpB2J55586HA" }),
    object: z.literal("project_deletion"),
    projectId: z.string(),
    status: z.enum(["pending", "running", "completed"]),
    counts: Counts,
    requestedAt: dateTime(),
    startedAt: dateTime().nullable(),
    finishedAt: dateTime().nullable(),
  })
  .openapi("ProjectDeletion");

export const OrgDeletionSchema = z
  .object({
    id: z.string().openapi({ example: "odel_8GTkjDw1hpB2J55586HA" }),
    object: z.literal("org_deletion"),
    status: z.enum(["pending", "running", "completed"]),
    counts: Counts,
    requestedAt: dateTime(),
    startedAt: dateTime().nullable(),
    finishedAt: dateTime().nullable(),
    expiresAt: dateTime()
      .nullable()
      .openapi({ description: "When this receipt is purged: two years after the deletion completed." }),
    receiptUrl: z.string(),
    receiptToken: z
      .string()
      .nullable()
      .openapi({
        description:
          "The receipt's one-time token (`odr_…`): only in the first answer to DELETE /v1/org, never stored in " +
          "plaintext, null in every other answer (a retry, an Idempotency-Key replay, the receipt itself).",
      }),
  })
  .openapi("OrgDeletion");

const ProjectParams = z.object({
  projectId: z
    .string()
    .max(64)
    .openapi({ param: { name: "projectId", in: "path" } }),
});
const DeletionParams = z.object({
  deletionId: z
    .string()
    .max(80)
    .openapi({ param: { name: "deletionId", in: "path" } }),
});

const DeleteOrgSchema = z
  .object({ confirm: z.string().max(200).openapi({ description: "The org's exact name." }) })
  .strict()
  .openapi("DeleteOrg", { example: { confirm: "Acme Inc." } });

const deleteProject = apiRoute({
  ...requires("admin", { orgWide: true }),
  method: "delete",
  path: "/v1/projects/{projectId}",
  tags: ["Projects"],
  operationId: "deleteProject",
  summary: "Delete an archived project and everything in it",
  description:
    "Owner or admin, org-wide key. The project must be archived first (409 project_not_archived). Its SDK keys " +
    "and the API keys restricted to it are revoked at once (refused by ingest within 5 s), queued events are " +
    "dropped, and the Cron Worker erases its events, user state, counts, identity links, destinations, relay " +
    "logs and dead letters, content jobs, containers and their media, ads-content links and webhook rows in " +
    "bounded steps. Returns the deletion (202); a second call returns the same one. From then on the project " +
    "can be read but not changed: unarchiving, renaming, new SDK keys, layer and destination changes answer " +
    "409 project_deletion_pending.",
  request: { params: ProjectParams, headers: IdempotencyHeaderSchema },
  responses: {
    202: json(ProjectDeletionSchema, "The project deletion"),
    ...errorResponses(403, 404, 409, 422),
  },
});

const getProjectDeletion = apiRoute({
  ...requires("read_only"),
  method: "get",
  path: "/v1/project-deletions/{deletionId}",
  tags: ["Projects"],
  operationId: "getProjectDeletion",
  summary: "Get a project deletion and its counts",
  description: "Status and counts per class of a project deletion of the caller's org.",
  request: { params: DeletionParams },
  responses: { 200: json(ProjectDeletionSchema, "The project deletion"), ...errorResponses(404) },
});

const deleteOrg = apiRoute({
  ...requires("owner", { orgWide: true }),
  method: "delete",
  path: "/v1/org",
  tags: ["Org"],
  operationId: "deleteOrg",
  summary: "Delete the org and everything in it (owner only)",
  description:
    "Owner key, org-wide. `confirm` must repeat the org's name (400 confirmation_mismatch). Every API key and " +
    "SDK key of the org is revoked at once (changes are refused immediately, reads within 5 s), queued events " +
    "and relay/webhook messages are dropped, and the Cron Worker erases every row and object of the org. The " +
    "answer (202) carries the receipt id and its one-time token; read the receipt at " +
    "GET /v1/org-deletion-receipts/{id} with `Authorization: Bearer <token>` for two years after completion.",
  request: {
    headers: IdempotencyHeaderSchema,
    body: { content: { "application/json": { schema: DeleteOrgSchema } }, required: true },
  },
  responses: {
    202: json(OrgDeletionSchema, "The org deletion receipt"),
    ...errorResponses(400, 403, 409, 422),
  },
});

/** The receipt route answers without an API key (workers/api/app.ts lets it past authentication). */
export const RECEIPT_PATH_PREFIX = "/v1/org-deletion-receipts/";

export function registerLifecycleRoutes(app: OpenAPIHono<ApiEnv>) {
  app.openapi(deleteProject, (c) =>
    mutation(c, async (ctx) => {
      const { deletion } = await requestProjectDeletion(ctx, c.req.valid("param").projectId);
      return c.json(deletion, 202);
    }),
  );

  app.openapi(getProjectDeletion, (c) =>
    query(c, async (ctx) => c.json(await visibleProjectDeletion(ctx, c.req.valid("param").deletionId), 200)),
  );

  app.openapi(deleteOrg, (c) =>
    mutation(c, async (ctx) => {
      const { deletion } = await requestOrgDeletion(ctx, c.req.valid("json").confirm);
      return c.json(deletion, 202);
    }),
  );

  // Not an OpenAPI operation of the partner API: every one of those is called with an API key (and the
  // route-security suite holds each to it); this one is called with the receipt's token alone. Its answer
  // is OrgDeletionSchema (README, "Project and org deletion").
  app.get(`${RECEIPT_PATH_PREFIX}:receiptId`, async (c) => {
    // No API key to count against: each client address is held to the per-key limit instead (the address
    // is a rate-limit key in memory and in Cloudflare's counter, never logged or stored), so guessing
    // tokens costs a database transaction a few times a second at most.
    const client = c.req.header("CF-Connecting-IP") ?? "unknown";
    await enforceRateLimit(c, `receipt:${client}`, "Too many receipt reads from this address.");
    const receiptId = c.req.param("receiptId");
    const token = /^Bearer\s+(\S+)$/i.exec(c.req.header("Authorization") ?? "")?.[1];
    if (receiptId.length > 80) throw new ApiError("not_found", "No such org deletion receipt.");
    const receipt = await readOrgDeletionReceipt(c.get("db"), receiptId, token);
    return c.json(OrgDeletionSchema.parse(receipt), 200);
  });
}
