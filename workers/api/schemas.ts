import { z } from "@hono/zod-openapi";
import { ERROR_CODES } from "../../shared/errors";

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

export function listOf<T extends z.ZodTypeAny>(item: T, name: string) {
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

/** The error responses every authenticated route can give, for the OpenAPI document. */
export const errorResponses = (...statuses: (400 | 401 | 403 | 404 | 409 | 422 | 429)[]) =>
  Object.fromEntries(
    [401, 429, ...statuses].map((status) => [
      status,
      { description: ERROR_DESCRIPTIONS[status], content: { "application/json": { schema: ErrorSchema } } },
    ]),
  );

const ERROR_DESCRIPTIONS: Record<number, string> = {
  400: "Invalid request (code invalid_request lists the offending fields in details)",
  401: "Missing, unknown, revoked or expired API key",
  403: "The key's role or project restriction does not allow this",
  404: "No such resource in this org",
  409: "Conflict, or an Idempotency-Key still in flight (idempotency_key_in_use)",
  422: "Idempotency-Key reused with a different request (idempotency_key_reused)",
  429: "Rate limited; see Retry-After and RateLimit-* headers",
};

export const IdempotencyHeaderSchema = z.object({
  "idempotency-key": z.string().min(1).max(255).optional().openapi({
    description: "Makes retries safe: the same key and request return the first response again.",
  }),
});

export const dateTime = () => z.string().datetime().openapi({ example: "2026-11-23T12:00:00.000Z" });

/** A JSON response entry for createRoute's `responses`. */
export const json = (schema: z.ZodTypeAny, description: string) => ({
  description,
  content: { "application/json": { schema } },
});
