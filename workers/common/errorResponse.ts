import type { Context } from "hono";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import { type ApiError, errorBody } from "../../shared/errors";
import { newId } from "../../shared/ids";

type WithRequestId = { Variables: { requestId: string } };

/** The one way every Worker answers with an error: the shared body shape, its headers, X-Request-Id. */
export function errorResponse<E extends WithRequestId>(c: Context<E>, error: ApiError): Response {
  const requestId = c.get("requestId") ?? newId("req");
  for (const [name, value] of Object.entries(error.headers)) c.header(name, value);
  c.header("X-Request-Id", requestId);
  return c.json(errorBody(error, requestId), error.status as ContentfulStatusCode);
}
