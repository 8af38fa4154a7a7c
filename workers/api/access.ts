import type { MiddlewareHandler } from "hono";
import { ApiError } from "../../shared/errors";
import { hasRole, type Role } from "../../shared/roles";
import type { ApiEnv } from "./context";

/**
 * Who may call a route, declared once on the route (createRoute({ ...requires("admin"), … })): checked by
 * route middleware before the body is validated and before a stored idempotent answer could be replayed, so
 * neither can skip it, and published in the OpenAPI document as `x-required-role` (the README's role table
 * is tested against it). `orgWide`: keys restricted to one project are refused (403). Routes with a
 * `{projectId}` in their path refuse a key restricted to another project with 404, as for a project of
 * another org (whether it exists is not confirmed).
 */
export function requires(role: Role, options: { orgWide?: boolean } = {}) {
  const check: MiddlewareHandler<ApiEnv> = async (c, next) => {
    const auth = c.get("auth");
    if (!hasRole(auth.role, role)) {
      throw new ApiError(
        "forbidden",
        `This API key's role (${auth.role}) cannot do this; it needs ${role} or higher.`,
      );
    }
    if (options.orgWide && auth.projectId) {
      throw new ApiError("forbidden", "This API key is restricted to one project.");
    }
    const projectId = c.req.param("projectId");
    if (projectId !== undefined && auth.projectId && auth.projectId !== projectId) {
      throw new ApiError("not_found", `No project ${projectId}.`);
    }
    await next();
  };
  return {
    middleware: check,
    "x-required-role": role,
    ...(options.orgWide ? { "x-org-wide-key-only": true } : {}),
  };
}
