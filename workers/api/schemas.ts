import { createRoute, type OpenAPIHono, type RouteConfig, z } from "@hono/zod-openapi";
import { ERROR_CODES } from "../../shared/errors";
import type { ApiEnv } from "./context";

// Shapes shared by every route. Each schema is named (.openapi("…")) so the document shows it once.

export const MAX_PAGE_SIZE = 100;

export const ErrorSchema = z
  .object({
    error: z.object({
      type: z.string().openapi({ example: "invalid_request_error" }),
      code: z
        .enum(Object.keys(ERROR_CODES) as [keyof typeof ERROR_CODES])
        .openapi({ example: "invalid_request" }),
      message: z.string(),
      requestId: z.string().openapi({ example: "req_8GTkjDw1hpB2J55586HA" }),
      docs: z.string().optional(),
      details: z.unknown().optional(),
    }),
  })
  .openapi("Error");

export const PageQuerySchema = z.object({
  limit: z.coerce
    .number()
    .int()
    .min(1)
    .max(MAX_PAGE_SIZE)
    .default(20)
    .openapi({ description: `Page size, 1–${MAX_PAGE_SIZE}.`, example: 20 }),
  starting_after: z
    .string()
    .max(64)
    .optional()
    .openapi({ description: "The last id of the previous page; returns the items after it." }),
});

export function listOf<T extends z.ZodType>(item: T, name: string) {
  return z
    .object({
      object: z.literal("list"),
      data: z.array(item),
      hasMore: z.boolean(),
      /** Pass as starting_after to get the next page; null on the last page. */
      nextCursor: z.string().nullable(),
    })
    .openapi(name);
}

export function page<T extends { id: string }>(result: { data: T[]; hasMore: boolean }) {
  return {
    object: "list" as const,
    data: result.data,
    hasMore: result.hasMore,
    nextCursor: result.hasMore ? (result.data.at(-1)?.id ?? null) : null,
  };
}

type ErrorStatus = keyof typeof ERROR_DESCRIPTIONS;

/** Route-specific error responses for createRoute's `responses`, keyed by their exact statuses. */
export function errorResponses<const S extends readonly ErrorStatus[]>(...statuses: S) {
  return Object.fromEntries(
    statuses.map((status) => [status, json(ErrorSchema, ERROR_DESCRIPTIONS[status])]),
  ) as { [K in S[number]]: ReturnType<typeof json<typeof ErrorSchema>> };
}

const ERROR_DESCRIPTIONS = {
  400:
    "Invalid request: invalid_request (details lists each offending field), invalid_json, or " +
    "invalid_idempotency_key",
  401: "Missing, unknown, revoked or expired API key (unauthorized)",
  403: "The key's role or project restriction does not allow this",
  404: "No such resource in this org",
  409: "Conflict, or an Idempotency-Key still in flight (idempotency_key_in_use)",
  413: "The request body is over 1 MB (payload_too_large); nothing was changed",
  415: "The body was not sent as JSON (unsupported_media_type): use Content-Type: application/json",
  422: "Idempotency-Key reused with a different request (idempotency_key_reused)",
  429: "Rate limited (rate_limited); Retry-After says when to retry",
  500: "Something went wrong on our side (internal_error); quote the requestId (also in X-Request-Id)",
  503: "The API is briefly unavailable (database_unavailable); retry",
} as const;

/** Where a route's answers may be a stored replay: its request takes an Idempotency-Key. */
export const IdempotencyHeaderSchema = z.object({
  "idempotency-key": z.string().min(1).max(255).optional().openapi({
    description: "Makes retries safe: the same key and request return the first response again.",
  }),
});

export const dateTime = () => z.string().datetime().openapi({ example: "2026-11-23T12:00:00.000Z" });

/**
 * A JSON response entry for createRoute's `responses`. Generic, so the entry keeps its schema's type:
 * app.openapi() then checks every handler's `c.json(body, status)` against the schema declared for that
 * status (RouteConfigToTypedResponse in @hono/zod-openapi).
 */
export const json = <S extends z.ZodType>(schema: S, description: string) => ({
  description,
  content: { "application/json": { schema } },
});

/**
 * The response headers of this API, declared once as components of the document and referenced from each
 * answer. Names and meanings are what the middleware sets (middleware.ts, handlers.ts).
 */
type ResponseHeader =
  | "X-Request-Id"
  | "X-Client-Request-Id"
  | "RateLimit-Limit"
  | "RateLimit-Remaining"
  | "RateLimit-Reset"
  | "Retry-After"
  | "Idempotent-Replayed";
type HeaderDoc = {
  description: string;
  schema: { type: "string" | "integer"; example?: string | number; enum?: string[] };
};
const RESPONSE_HEADERS: Record<ResponseHeader, HeaderDoc> = {
  "X-Request-Id": {
    description:
      "Our id for this request: the request log's key and `requestId` in error bodies. On every answer.",
    schema: { type: "string", example: "req_8GTkjDw1hpB2J55586HA" },
  },
  "X-Client-Request-Id": {
    description:
      "The caller's own X-Request-Id, echoed when it had the allowed shape (8–128 of [A-Za-z0-9._:-]).",
    schema: { type: "string" },
  },
  "RateLimit-Limit": {
    description: "Requests this API key earns per minute (and may save up). On every answer to a known key.",
    schema: { type: "integer", example: 600 },
  },
  "RateLimit-Remaining": {
    description: "Requests the key can send at once, right now.",
    schema: { type: "integer", example: 599 },
  },
  "RateLimit-Reset": {
    description: "Seconds until the key has its whole limit again, if it sends nothing meanwhile.",
    schema: { type: "integer", example: 1 },
  },
  "Retry-After": {
    description: "Seconds until the next request can pass (rounded up).",
    schema: { type: "integer", example: 1 },
  },
  "Idempotent-Replayed": {
    description:
      "`true` when this is the stored answer to an earlier request with the same Idempotency-Key; absent on a live answer.",
    schema: { type: "string", enum: ["true"] },
  },
};

export function registerResponseHeaders(app: OpenAPIHono<ApiEnv>) {
  for (const [name, header] of Object.entries(RESPONSE_HEADERS)) {
    app.openAPIRegistry.registerComponent("headers", name, header);
  }
}

const headerRef = (name: ResponseHeader) => ({ $ref: `#/components/headers/${name}` });
/** Answers the idempotency layer never stores (refused before it runs, or released): never replayed. */
const NEVER_STORED = new Set(["401", "403", "413", "415", "429"]);

/**
 * What every operation can answer besides its own responses, and the headers of each answer. 401, 429, 500
 * and 503 (the key lookup's database) can come from any route; 400 from any route that validates part of
 * the request; 413 from any request with a body (the limit is read before routing); 415 from a route that
 * takes a JSON body. A route's own entry for a status wins.
 */
function withSharedResponses(config: RouteConfig): RouteConfig["responses"] {
  const shared: ErrorStatus[] = [401, 429, 500, 503];
  const request = config.request;
  if (request?.params || request?.query || request?.headers || request?.body) shared.push(400);
  if (config.method !== "get") shared.push(413);
  if (request?.body) shared.push(415);
  const replayable = request?.headers === IdempotencyHeaderSchema;
  const responses = { ...errorResponses(...shared), ...config.responses };
  return Object.fromEntries(
    Object.entries(responses).map(([status, response]) => {
      const names: ResponseHeader[] = ["X-Request-Id", "X-Client-Request-Id"];
      // The rate limiter runs right after the key is found: every answer but a 401 carries its state.
      if (status !== "401") names.push("RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset");
      if (status === "429") names.push("Retry-After");
      if (replayable && !status.startsWith("5") && !NEVER_STORED.has(status))
        names.push("Idempotent-Replayed");
      return [status, { ...response, headers: Object.fromEntries(names.map((n) => [n, headerRef(n)])) }];
    }),
  );
}

type OperationConfig = Omit<RouteConfig, "path"> & {
  /** Stable and camelCase: client generators name their methods after it. */
  operationId: string;
  summary: string;
  description: string;
};

/**
 * createRoute for this API: every operation has an operationId, a summary and a description, and gets the
 * shared error responses and response headers (withSharedResponses). The returned type is the route as
 * declared: the shared entries are errors, which handlers throw (ApiError) and never return, so the
 * handler's return type stays exactly the declared success and error bodies.
 */
export function apiRoute<P extends string, R extends OperationConfig & { path: P }>(config: R) {
  return createRoute<P, R>({ ...config, responses: withSharedResponses(config) } as R);
}
