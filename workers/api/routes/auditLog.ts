import { type OpenAPIHono, z } from "@hono/zod-openapi";
import { listAuditEventsWithArchive } from "../../../functions/audit/coldAuditEvents";
import { type AuditEvent, listAuditEvents } from "../../../functions/audit/listAuditEvents";
import { objectStoreFor } from "../../../functions/storage/config";
import { parseEnv } from "../../common/parseEnv";
import { requires } from "../access";
import type { ApiEnv } from "../context";
import { bucketVarsSchema } from "../env";
import { query } from "../handlers";
import { apiRoute, dateTime, errorResponses, listOf, PageQuerySchema, page } from "../schemas";

export const AuditEventSchema = z
  .object({
    id: z.string().openapi({ example: "aud_6RkVq3ZpTn8Wc2XyHb5M" }),
    object: z.literal("audit_event"),
    occurredAt: dateTime(),
    actor: z
      .object({
        type: z.enum(["api_key", "member", "system"]),
        id: z.string().openapi({ example: "key_5yqQ2hM8c6PnbX3vLk1R" }),
      })
      .openapi({ description: "Who made the change: the API key (or member) behind the request." }),
    action: z.string().openapi({ example: "project.updated" }),
    resource: z.object({
      type: z.string().openapi({ example: "project" }),
      id: z.string().openapi({ example: "proj_8GTkjDw1hpB2J55586HA" }),
    }),
    requestId: z
      .string()
      .nullable()
      .openapi({ description: "The X-Request-Id of the request that made the change." }),
    changes: z
      .object({
        before: z.record(z.string(), z.unknown()).optional(),
        after: z.record(z.string(), z.unknown()).optional(),
      })
      .openapi({
        description:
          "The fields that changed, before and after; a create has no `before`, a removal no `after`. " +
          "Secrets are never included.",
        example: { before: { eventRetentionDays: 400 }, after: { eventRetentionDays: 90 } },
      }),
  })
  .openapi("AuditEvent");

const instant = (description: string) =>
  z.iso.datetime({ offset: true }).optional().openapi({ description, example: "2026-11-23T12:00:00Z" });

const AuditLogQuerySchema = PageQuerySchema.extend({
  action: z
    .string()
    .max(100)
    .optional()
    .openapi({ description: "Exact action.", example: "project.updated" }),
  resource_type: z.string().max(100).optional().openapi({ example: "project" }),
  resource_id: z.string().max(64).optional().openapi({ example: "proj_8GTkjDw1hpB2J55586HA" }),
  actor_id: z
    .string()
    .max(64)
    .optional()
    .openapi({ description: "The API key (or member) id that made the change." }),
  from: instant("Only events at or after this time (ISO 8601)."),
  to: instant("Only events before this time (ISO 8601)."),
}).refine((q) => !q.from || !q.to || Date.parse(q.from) < Date.parse(q.to), {
  message: "`from` must be earlier than `to`.",
  path: ["to"],
});

export function auditEventJson(e: AuditEvent) {
  return {
    id: e.id,
    object: "audit_event" as const,
    occurredAt: e.occurredAt.toISOString(),
    actor: e.actor,
    action: e.action,
    resource: e.resource,
    requestId: e.requestId,
    changes: e.changes,
  };
}

const list = apiRoute({
  ...requires("admin", { orgWide: true }),
  method: "get",
  path: "/v1/audit-log",
  tags: ["Audit log"],
  operationId: "listAuditEvents",
  summary: "List audit events, newest first (admin; org-wide keys only)",
  description:
    "Every create, update and delete of projects, API keys, SDK keys and members, written in the same " +
    "transaction as the change. Events older than the 90-day hot period are read from the cold archive " +
    "with the same filters and order; a page that ends on an archived event answers a nextCursor of the " +
    "form `<id>.<position>`: pass nextCursor back as starting_after.",
  request: { query: AuditLogQuerySchema },
  responses: {
    200: {
      description: "A page of audit events",
      content: { "application/json": { schema: listOf(AuditEventSchema, "AuditEventList") } },
    },
    ...errorResponses(400, 403),
  },
});

export function registerAuditLogRoutes(app: OpenAPIHono<ApiEnv>) {
  app.openapi(list, (c) =>
    query(c, async (ctx) => {
      const q = c.req.valid("query");
      const filter = {
        action: q.action,
        resourceType: q.resource_type,
        resourceId: q.resource_id,
        actorId: q.actor_id,
        from: q.from === undefined ? undefined : new Date(q.from),
        to: q.to === undefined ? undefined : new Date(q.to),
      };
      const pageOf = { limit: q.limit, startingAfter: q.starting_after };
      // With the archive bucket configured, older ranges are read from it (functions/audit/coldAuditEvents.ts).
      const vars = parseEnv(bucketVarsSchema, c.env);
      const archive = vars.ARCHIVE_BUCKET ? objectStoreFor(vars, vars.ARCHIVE_BUCKET) : undefined;
      if (archive) {
        const result = await listAuditEventsWithArchive(ctx, archive, filter, pageOf);
        return c.json(
          {
            object: "list" as const,
            data: result.data.map(auditEventJson),
            hasMore: result.hasMore,
            nextCursor: result.nextCursor,
          },
          200,
        );
      }
      const result = await listAuditEvents(ctx, filter, pageOf);
      return c.json(page({ data: result.data.map(auditEventJson), hasMore: result.hasMore }), 200);
    }),
  );
}
