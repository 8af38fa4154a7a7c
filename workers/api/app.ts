import { OpenAPIHono } from "@hono/zod-openapi";
import { HTTPException } from "hono/http-exception";
import { isDataError } from "../../shared/db";
import { ApiError } from "../../shared/errors";
import { errorResponse } from "../common/errorResponse";
import type { ApiEnv } from "./context";
import { registerDocsRoutes } from "./docs";
import { authenticate, limitBody, log, requestContext, securityHeaders } from "./middleware";
import { registerAdsContentRoutes } from "./routes/adsContent";
import { registerApiKeyRoutes } from "./routes/apiKeys";
import { registerAuditLogRoutes } from "./routes/auditLog";
import { registerContentContainerRoutes } from "./routes/contentContainers";
import { registerContentJobRoutes } from "./routes/contentJobs";
import { registerDeletionRequestRoutes } from "./routes/deletionRequests";
import { registerDestinationRoutes } from "./routes/destinations";
import { RECEIPT_PATH_PREFIX, registerLifecycleRoutes } from "./routes/lifecycle";
import { registerMemberRoutes } from "./routes/members";
import { registerOrgRoutes } from "./routes/org";
import { registerOrgExportRoutes } from "./routes/orgExports";
import { registerProjectLayerRoutes } from "./routes/projectLayers";
import { registerProjectRoutes } from "./routes/projects";
import { registerRelayDeliveryRoutes } from "./routes/relayDeliveries";
import { registerRequestLogRoutes } from "./routes/requestLogs";
import { registerSdkKeyRoutes } from "./routes/sdkKeys";
import { registerStorageConfigRoutes } from "./routes/storageConfigs";
import { registerUserDataRoutes } from "./routes/userData";
import { registerWebhookEndpointRoutes } from "./routes/webhookEndpoints";
import { registerResponseHeaders } from "./schemas";

export const OPENAPI_INFO = {
  openapi: "3.1.0",
  info: {
    title: "Layers partner API",
    version: "1.0.0",
    description:
      "Secret API keys (`Authorization: Bearer lp_live_…`). Every POST/PATCH/DELETE accepts an `Idempotency-Key`. " +
      "Errors: `{ error: { type, code, message, requestId, docs, details? } }`.",
  },
};

/** The API app; the Worker serves it and tests drive this same app in workerd, middleware and all. */
export function createApiApp() {
  const app = new OpenAPIHono<ApiEnv>({
    // zod failures become our one error shape, listing every offending field.
    defaultHook: (result) => {
      if (
        !result.success &&
        result.target === "header" &&
        result.error.issues[0]?.path[0] === "idempotency-key"
      ) {
        throw new ApiError("invalid_idempotency_key", "Idempotency-Key must be 1 to 255 characters.");
      }
      if (!result.success) {
        throw new ApiError("invalid_request", "The request is invalid; see details for each field.", {
          details: result.error.issues.map((i) => ({
            field: i.path.join(".") || result.target,
            message: i.message,
          })),
        });
      }
    },
  });

  app.use("*", securityHeaders);
  app.use("*", requestContext);
  app.openAPIRegistry.registerComponent("securitySchemes", "apiKey", { type: "http", scheme: "bearer" });
  registerResponseHeaders(app);
  // The server is the origin that served the document: production's for production, the local Worker's
  // under `npm run dev`, so the /docs page's "Try it out" calls the API it was loaded from.
  app.doc31("/v1/openapi.json", (c) => ({
    ...OPENAPI_INFO,
    servers: [{ url: new URL(c.req.url).origin }],
    security: [{ apiKey: [] }],
  }));
  registerDocsRoutes(app);
  // The org-deletion receipt is read with its own token, not an API key (the org may be gone).
  app.use("/v1/*", async (c, next) =>
    c.req.path === "/v1/openapi.json" || c.req.path.startsWith(RECEIPT_PATH_PREFIX)
      ? next()
      : authenticate(c, next),
  );
  app.use("*", limitBody);

  registerProjectRoutes(app);
  registerApiKeyRoutes(app);
  registerSdkKeyRoutes(app);
  registerOrgRoutes(app);
  registerOrgExportRoutes(app);
  registerMemberRoutes(app);
  registerAuditLogRoutes(app);
  registerRequestLogRoutes(app);
  registerDestinationRoutes(app);
  registerRelayDeliveryRoutes(app);
  registerUserDataRoutes(app);
  registerDeletionRequestRoutes(app);
  registerStorageConfigRoutes(app);
  registerWebhookEndpointRoutes(app);
  registerContentJobRoutes(app);
  registerProjectLayerRoutes(app);
  registerContentContainerRoutes(app);
  registerAdsContentRoutes(app);
  registerLifecycleRoutes(app);

  app.notFound((c) => errorResponse(c, new ApiError("not_found", `No route ${c.req.method} ${c.req.path}.`)));
  app.onError((error, c) => {
    if (error instanceof ApiError) return errorResponse(c, error);
    // A value Postgres refuses as data (SQLSTATE class 22: NUL, invalid text, out of range): bad input,
    // not our failure. The body is checked for such strings first; this catches what came another way.
    if (isDataError(error)) {
      return errorResponse(
        c,
        new ApiError(
          "invalid_request",
          `A value in the request cannot be stored (database error ${error.code}).`,
        ),
      );
    }
    // Hono's own 400 for a body that is not JSON: our code, not a 500.
    if (error instanceof HTTPException && error.status === 400) {
      return errorResponse(c, new ApiError("invalid_json", "The request body is not valid JSON."));
    }
    // @hono/zod-openapi's gate for a body sent without Content-Type: application/json.
    if (error instanceof HTTPException && error.status === 415) {
      return errorResponse(
        c,
        new ApiError(
          "unsupported_media_type",
          "Send request bodies as JSON (Content-Type: application/json).",
        ),
      );
    }
    // The request's own logger, or the Worker's when the failure came before it was made.
    (c.get("log") ?? log).error("unhandled error", { error });
    return errorResponse(c, new ApiError("internal_error", "Something went wrong on our side."));
  });
  return app;
}
