import type { MiddlewareHandler } from "hono";
import { matchedRoutes } from "hono/route";
import { resolveApiKey } from "../../functions/api/apiKeys";
import { writeRequestLog } from "../../functions/api/requestLogs";
import { closeDb, createDb } from "../../shared/db";
import { ApiError } from "../../shared/errors";
import { sha256Hex } from "../../shared/hash";
import { newId } from "../../shared/ids";
import { createLogger } from "../../shared/logger";
import type { ApiEnv } from "./context";
import { type ApiBindings, type ApiVars, apiVarsSchema } from "./env";

export const log = createLogger({ worker: "api" });
const CLIENT_REQUEST_ID = /^[A-Za-z0-9._:-]{8,128}$/;
const API_KEY_FORMAT = /^lp_(live|test)_[A-Za-z0-9]{16,64}$/;
const RATE_LIMIT_WINDOW_SECONDS = 60;

// The env object is the same for every request an isolate serves: validate it once, not per request.
const parsedVars = new WeakMap<object, ApiVars>();
function varsOf(env: ApiBindings): ApiVars {
  let vars = parsedVars.get(env);
  if (!vars) {
    vars = apiVarsSchema.parse(env);
    parsedVars.set(env, vars);
  }
  return vars;
}

/** Request id (a valid client X-Request-Id is echoed), env vars, the clock, and a db handle per request. */
export const requestContext: MiddlewareHandler<ApiEnv> = async (c, next) => {
  const sent = c.req.header("X-Request-Id");
  c.set("requestId", sent && CLIENT_REQUEST_ID.test(sent) ? sent : newId("req"));
  const vars = varsOf(c.env);
  c.set("vars", vars);
  const testNow = vars.ALLOW_TEST_CLOCK === "true" ? c.req.header("X-Layers-Test-Now") : undefined;
  c.set("now", testNow ? new Date(testNow) : new Date());
  const db = createDb({ databaseUrl: vars.DATABASE_URL, wsProxy: vars.NEON_WS_PROXY });
  c.set("db", db);
  const deferred: Promise<unknown>[] = [];
  c.set("defer", (task) => deferred.push(task));
  try {
    await next();
  } finally {
    c.header("X-Request-Id", c.get("requestId"));
    // Work deferred past the response (the request log) finishes before the connections close.
    c.executionCtx.waitUntil(Promise.allSettled(deferred).then(() => closeDb(db)));
  }
};

/**
 * Bearer API key → identity, then the per-key rate limit, then (after the handler) the request metadata
 * log. Runs before validation and before the idempotency layer: 401/403/429 are never stored as replays.
 */
export const authenticate: MiddlewareHandler<ApiEnv> = async (c, next) => {
  const started = performance.now();
  const secret = /^Bearer\s+(\S+)$/i.exec(c.req.header("Authorization") ?? "")?.[1];
  if (!secret || !API_KEY_FORMAT.test(secret)) {
    throw new ApiError("unauthorized", "Send a secret API key as `Authorization: Bearer lp_live_…`.");
  }
  const limiter = c.env.RATE_LIMITER.get(c.env.RATE_LIMITER.idFromName(await sha256Hex(secret)));
  const rate = await limiter.hit(
    c.get("vars").API_RATE_LIMIT_PER_MINUTE,
    RATE_LIMIT_WINDOW_SECONDS,
    c.get("now").getTime(),
  );
  c.header("RateLimit-Limit", String(rate.limit));
  c.header("RateLimit-Remaining", String(rate.remaining));
  c.header("RateLimit-Reset", String(rate.resetSeconds));
  if (!rate.allowed) {
    throw new ApiError("rate_limited", "Too many requests for this API key.", {
      headers: { "Retry-After": String(rate.resetSeconds) },
    });
  }
  let identity: Awaited<ReturnType<typeof resolveApiKey>>;
  try {
    identity = await resolveApiKey(c.get("db"), secret, c.get("now"));
  } catch (error) {
    log.error("api key lookup failed", { requestId: c.get("requestId"), error });
    throw new ApiError("database_unavailable", "The API is briefly unavailable; retry.");
  }
  if (!identity) throw new ApiError("unauthorized", "Unknown, revoked or expired API key.");
  c.set("auth", identity);

  let status = 500;
  try {
    await next();
    status = c.res.status;
  } catch (error) {
    status = error instanceof ApiError ? error.status : 500;
    throw error;
  } finally {
    const entry = {
      requestId: c.get("requestId"),
      orgId: identity.orgId,
      apiKeyId: identity.keyId,
      method: c.req.method,
      route: routePattern(c),
      status,
      latencyMs: performance.now() - started,
      occurredAt: c.get("now"),
    };
    // A separate, short transaction after the answer is ready; losing one log row never fails a request.
    c.get("defer")(
      writeRequestLog(c.get("db"), entry).catch((error) =>
        log.error("request log write failed", { requestId: entry.requestId, error }),
      ),
    );
  }
};

/** The pattern of the route that answered ("/v1/projects/:projectId"), never the concrete path with ids. */
function routePattern(c: Parameters<MiddlewareHandler<ApiEnv>>[0]): string {
  const handler = matchedRoutes(c).findLast((r) => r.method !== "ALL");
  return handler?.path ?? "(unmatched)";
}
