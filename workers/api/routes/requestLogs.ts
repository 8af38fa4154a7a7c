import { createRoute, type OpenAPIHono, z } from "@hono/zod-openapi";
import { listRequestLogs, type RequestLog } from "../../../functions/api/requestLogs";
import type { ApiEnv } from "../context";
import { query, requireOrgWideKey } from "../handlers";
import { dateTime, errorResponses, PageQuerySchema } from "../schemas";

const RequestLogSchema = z
  .object({
    requestId: z.string().openapi({ example: "req_8GTkjDw1hpB2J55586HA" }),
    object: z.literal("request_log"),
    apiKeyId: z.string().openapi({ example: "key_5yqQ2hM8c6PnbX3vLk1R" }),
    method: z.string().openapi({ example: "PATCH" }),
    route: z.string().openapi({
      description: "The route pattern that answered, never the concrete path.",
      example: "/v1/projects/:projectId",
    }),
    status: z.number().int().openapi({ example: 200 }),
    latencyMs: z.number().int().openapi({ example: 12 }),
    occurredAt: dateTime(),
  })
  .openapi("RequestLog", { description: "Request metadata only; bodies are never recorded. Kept 30 days." });

const RequestLogListSchema = z
  .object({
    object: z.literal("list"),
    data: z.array(RequestLogSchema),
    hasMore: z.boolean(),
    nextCursor: z.string().nullable().openapi({ description: "Pass as starting_after for the next page." }),
  })
  .openapi("RequestLogList");

const instant = (description: string) =>
  z.iso.datetime({ offset: true }).optional().openapi({ description, example: "2026-11-23T12:00:00Z" });

const RequestLogQuerySchema = PageQuerySchema.extend({
  starting_after: z
    .string()
    .max(128)
    .optional()
    .openapi({ description: "The last requestId of the previous page; returns the requests before it." }),
  status: z.coerce.number().int().min(100).max(599).optional().openapi({ example: 404 }),
  api_key_id: z.string().max(64).optional().openapi({ example: "key_5yqQ2hM8c6PnbX3vLk1R" }),
  from: instant("Only requests at or after this time (ISO 8601)."),
  to: instant("Only requests before this time (ISO 8601)."),
}).refine((q) => !q.from || !q.to || Date.parse(q.from) < Date.parse(q.to), {
  message: "`from` must be earlier than `to`.",
  path: ["to"],
});

function requestLogJson(r: RequestLog) {
  return {
    requestId: r.requestId,
    object: "request_log" as const,
    apiKeyId: r.apiKeyId,
    method: r.method,
    route: r.route,
    status: r.status,
    latencyMs: r.latencyMs,
    occurredAt: r.occurredAt.toISOString(),
  };
}

const list = createRoute({
  method: "get",
  path: "/v1/request-logs",
  tags: ["Request logs"],
  summary: "List the org's API requests, newest first (admin; org-wide keys only)",
  description:
    "One entry per authenticated request: key, method, route pattern, status, latency. It is written just " +
    "after the response, so a request shows up here a moment later.",
  request: { query: RequestLogQuerySchema },
  responses: {
    200: {
      description: "A page of request logs",
      content: { "application/json": { schema: RequestLogListSchema } },
    },
    ...errorResponses(400, 403),
  },
});

export function registerRequestLogRoutes(app: OpenAPIHono<ApiEnv>) {
  app.openapi(list, (c) =>
    query(c, "admin", async (s) => {
      requireOrgWideKey(c);
      const q = c.req.valid("query");
      const result = await listRequestLogs(
        s.tx,
        {
          status: q.status,
          apiKeyId: q.api_key_id,
          from: q.from === undefined ? undefined : new Date(q.from),
          to: q.to === undefined ? undefined : new Date(q.to),
        },
        { limit: q.limit, startingAfter: q.starting_after },
      );
      const data = result.data.map(requestLogJson);
      return c.json(
        {
          object: "list" as const,
          data,
          hasMore: result.hasMore,
          nextCursor: result.hasMore ? (data.at(-1)?.requestId ?? null) : null,
        },
        200,
      );
    }),
  );
}
