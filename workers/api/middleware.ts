import type { MiddlewareHandler } from "hono";
import { matchedRoutes } from "hono/route";
import { secureHeaders } from "hono/secure-headers";
import { type ApiKeyIdentity, apiKeyPrefix, resolveApiKey } from "../../functions/apiKeys/store";
import {
  type RequestLogEntry,
  writeRequestLog,
  writeRequestLogs,
} from "../../functions/requestLogs/requestLogs";
import { closeDb, createDb, type Db } from "../../shared/db";
import { createHttpReads, type HttpReads } from "../../shared/db/httpReads";
import { ApiError } from "../../shared/errors";
import { sha256Hex } from "../../shared/hash";
import { hasSecretShape, newId } from "../../shared/ids";
import { createLogger } from "../../shared/logger";
import { mayHoldUnstorableText, unstorableText } from "../../shared/storableText";
import { KeyLookupCache } from "../common/keyLookupCache";
import { parseEnv } from "../common/parseEnv";
import { readBody } from "../common/readBody";
import { RequestLogBatcher } from "../common/requestLogBatcher";
import type { ApiEnv } from "./context";
import { type ApiVars, apiVarsSchema } from "./env";
import { IsolateRateLimits } from "./rateLimiter";

export const log = createLogger({ worker: "api" });
const CLIENT_REQUEST_ID = /^[A-Za-z0-9._:-]{8,128}$/;
/** Where a caller's own (valid) X-Request-Id comes back; ours is always X-Request-Id. */
export const CLIENT_REQUEST_ID_HEADER = "X-Client-Request-Id";
/** API_RATE_LIMIT_PER_MINUTE is earned over this period: API_RATE_LIMITER's `period` in wrangler.toml. */
const RATE_LIMIT_PERIOD_SECONDS = 60;
const isolateRateLimits = new IsolateRateLimits();
/** Largest request body the API reads: 1 MB. The biggest real body (a destination or a batch of members) is a few KB. */
export const API_MAX_BODY_BYTES = 1_048_576;
/** How long a request-log row waits for others to share its write; a batch holds at most this many rows. */
const REQUEST_LOG_BATCH_DELAY_MS = 20;
const REQUEST_LOG_BATCH_MAX_ROWS = 200;

/**
 * Hono's secure headers (nosniff, HSTS, no referrer, same-origin resource and opener policies, …) on every
 * answer, errors included, with a Content-Security-Policy. JSON answers are never rendered, so theirs
 * allows nothing. The /docs page, where partners paste API keys, may load scripts, styles, fonts and
 * images from this origin only (the renderer is served from here) and fetch only from it; inline scripts
 * and styles in markup stay forbidden, and no page may frame it.
 */
const NOTHING = ["'none'"];
const headersForApi = secureHeaders({
  xFrameOptions: "DENY",
  contentSecurityPolicy: {
    defaultSrc: NOTHING,
    frameAncestors: NOTHING,
    baseUri: NOTHING,
    formAction: NOTHING,
  },
});
const SELF = ["'self'"];
const headersForDocs = secureHeaders({
  xFrameOptions: "DENY",
  contentSecurityPolicy: {
    defaultSrc: NOTHING,
    scriptSrc: SELF,
    styleSrc: SELF,
    imgSrc: ["'self'", "data:"],
    fontSrc: SELF,
    connectSrc: SELF,
    frameAncestors: NOTHING,
    baseUri: NOTHING,
    formAction: SELF,
  },
});
export const securityHeaders: MiddlewareHandler<ApiEnv> = (c, next) =>
  c.req.path === "/docs" ? headersForDocs(c, next) : headersForApi(c, next);

/**
 * Our request id (always generated: it keys the request log, so no client may choose it), the caller's
 * X-Request-Id kept beside it when it has the allowed shape, env vars, the clock, and a db handle.
 */
export const requestContext: MiddlewareHandler<ApiEnv> = async (c, next) => {
  const requestId = newId("req");
  c.set("requestId", requestId);
  c.set("log", log.child({ requestId }));
  const sent = c.req.header("X-Request-Id");
  const clientRequestId = sent && CLIENT_REQUEST_ID.test(sent) ? sent : null;
  c.set("clientRequestId", clientRequestId);
  const vars = parseEnv(apiVarsSchema, c.env);
  c.set("vars", vars);
  const testNow = vars.ALLOW_TEST_CLOCK === "true" ? c.req.header("X-Layers-Test-Now") : undefined;
  c.set("now", testNow ? new Date(testNow) : new Date());
  // Opens its connection only if the request needs one: a change, or a read that streams.
  const db = createDb({
    databaseUrl: vars.DATABASE_URL,
    wsProxy: vars.NEON_WS_PROXY,
    role: "layers_api",
  });
  c.set("db", db);
  const isolate = httpReadsFor(vars);
  c.set("reads", isolate.reads);
  c.set("requestLogs", isolate.requestLogs);
  const deferred: Promise<unknown>[] = [];
  c.set("defer", (task) => deferred.push(task));
  try {
    await next();
  } finally {
    c.header("X-Request-Id", c.get("requestId"));
    if (clientRequestId) c.header(CLIENT_REQUEST_ID_HEADER, clientRequestId);
    // Work deferred past the response (the request log) finishes before the connections close.
    c.executionCtx.waitUntil(Promise.allSettled(deferred).then(() => closeDb(db)));
  }
};

// The HTTP reads handle holds no connection, so one serves every request of the isolate, and so does the
// request log's batcher that writes through it.
let httpReads:
  | { vars: ApiVars; reads: HttpReads; requestLogs: RequestLogBatcher<RequestLogEntry> }
  | undefined;
function httpReadsFor(vars: ApiVars): NonNullable<typeof httpReads> {
  if (httpReads?.vars !== vars) {
    const reads = createHttpReads({
      databaseUrl: vars.DATABASE_URL,
      httpProxy: vars.NEON_HTTP_PROXY,
      role: "layers_api",
    });
    httpReads = { vars, reads, requestLogs: requestLogBatcher(reads.withoutOrg({ readOnly: false })) };
  }
  return httpReads;
}

/**
 * Request-log rows written a batch per statement over HTTP (write_request_log checks each key is its
 * org's). A batch refused whole (one row's key no longer exists) is written row by row, so it costs only
 * that row; losing one log row never fails a request.
 */
function requestLogBatcher(db: Db): RequestLogBatcher<RequestLogEntry> {
  return new RequestLogBatcher<RequestLogEntry>(
    async (rows) => {
      try {
        await writeRequestLogs(db, rows);
      } catch (error) {
        if (rows.length === 1) return log.error("request log write failed", { error });
        await Promise.all(
          rows.map((row) =>
            writeRequestLog(db, row).catch((error) => log.error("request log write failed", { error })),
          ),
        );
      }
    },
    { delayMs: REQUEST_LOG_BATCH_DELAY_MS, maxRows: REQUEST_LOG_BATCH_MAX_ROWS },
  );
}

/**
 * API key lookups this isolate has made, by the key's hash, for API_KEY_CACHE_TTL_SECONDS: found keys (so a
 * read costs no lookup) and unknown ones (so a client retrying a wrong key costs none either). A revoked or
 * expired key may still answer reads on a warm isolate for that long, never a change: every POST/PATCH/
 * DELETE looks its key up afresh (and so ends the stale entry for the reads after it).
 */
let apiKeyLookups: { ttlMs: number; cache: KeyLookupCache<ApiKeyIdentity> } | undefined;
function keyLookupsFor(vars: ApiVars): KeyLookupCache<ApiKeyIdentity> {
  const ttlMs = vars.API_KEY_CACHE_TTL_SECONDS * 1000;
  if (apiKeyLookups?.ttlMs !== ttlMs) {
    apiKeyLookups = { ttlMs, cache: new KeyLookupCache({ knownTtlMs: ttlMs, unknownTtlMs: ttlMs }) };
  }
  return apiKeyLookups.cache;
}

const READ_METHODS = new Set(["GET", "HEAD"]);

const isApiKeyShaped = (secret: string) =>
  hasSecretShape(secret, apiKeyPrefix("live")) || hasSecretShape(secret, apiKeyPrefix("test"));

/**
 * Holds `key` to API_RATE_LIMIT_PER_MINUTE: this isolate's bucket first (exact RateLimit-* headers, no
 * call), then Cloudflare's count across isolates. Past it: 429 rate_limited with Retry-After.
 */
export async function enforceRateLimit(
  c: Parameters<MiddlewareHandler<ApiEnv>>[0],
  key: string,
  refusal: string,
): Promise<void> {
  let rate = isolateRateLimits.hit(
    key,
    c.get("vars").API_RATE_LIMIT_PER_MINUTE,
    RATE_LIMIT_PERIOD_SECONDS,
    c.get("now").getTime(),
  );
  if (rate.allowed && !(await c.env.API_RATE_LIMITER.limit({ key })).success) {
    // Other isolates spent the key's limit. The binding counts per period and says nothing more, so
    // nothing is left and a whole period is a wait that is always long enough.
    rate = {
      ...rate,
      allowed: false,
      remaining: 0,
      resetSeconds: RATE_LIMIT_PERIOD_SECONDS,
      retryAfterSeconds: RATE_LIMIT_PERIOD_SECONDS,
    };
  }
  c.header("RateLimit-Limit", String(rate.limit));
  c.header("RateLimit-Remaining", String(rate.remaining));
  c.header("RateLimit-Reset", String(rate.resetSeconds));
  // Refused before the request log too: a caller hammering past its limit costs no log writes.
  if (!rate.allowed) {
    throw new ApiError("rate_limited", refusal, {
      headers: { "Retry-After": String(rate.retryAfterSeconds) },
    });
  }
}

/**
 * Bearer API key → identity, then the per-key rate limit, then (after the handler) the request metadata
 * log. Cheapest check first, so traffic without a valid key costs next to nothing: the exact key shape,
 * then this isolate's memory of keys, then the database; only a real key reaches the rate limits (keyed by
 * the key's id, so no unknown key is ever counted). Runs before validation and before the idempotency
 * layer: 401/403/429 are never stored as replays.
 */
export const authenticate: MiddlewareHandler<ApiEnv> = async (c, next) => {
  const started = performance.now();
  const secret = /^Bearer\s+(\S+)$/i.exec(c.req.header("Authorization") ?? "")?.[1];
  if (!secret || !isApiKeyShaped(secret)) {
    throw new ApiError("unauthorized", "Send a secret API key as `Authorization: Bearer lp_live_…`.");
  }
  let identity: ApiKeyIdentity | null;
  try {
    const keys = keyLookupsFor(c.get("vars"));
    const lookup = READ_METHODS.has(c.req.method) ? keys.lookup : keys.refresh;
    // One HTTP round trip: the lookup runs before the org is known, through the definer function.
    identity = await lookup.call(keys, await sha256Hex(secret), Date.now(), () =>
      resolveApiKey(c.get("reads").withoutOrg({ readOnly: true }), secret, c.get("now")),
    );
  } catch (error) {
    c.get("log").error("api key lookup failed", { error });
    throw new ApiError("database_unavailable", "The API is briefly unavailable; retry.");
  }
  if (!identity) throw new ApiError("unauthorized", "Unknown, revoked or expired API key.");

  await enforceRateLimit(c, identity.keyId, "Too many requests for this API key.");
  c.set("auth", identity);
  c.set("log", c.get("log").child({ orgId: identity.orgId, route: routePattern(c) }));

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
      clientRequestId: c.get("clientRequestId"),
      orgId: identity.orgId,
      apiKeyId: identity.keyId,
      method: c.req.method,
      route: routePattern(c),
      status,
      latencyMs: performance.now() - started,
      occurredAt: c.get("now"),
    };
    // Written after the answer is ready, batched with the isolate's other requests' rows.
    const written = c.get("requestLogs").add(entry);
    if (written) c.get("defer")(written);
  }
};

/** The pattern of the route that answered ("/v1/projects/:projectId"), never the concrete path with ids. */
function routePattern(c: Parameters<MiddlewareHandler<ApiEnv>>[0]): string {
  const handler = matchedRoutes(c).findLast((r) => r.method !== "ALL");
  return handler?.path ?? "(unmatched)";
}

/**
 * A JSON body holding a string Postgres refuses (NUL, an unpaired surrogate) is bad input: refused as a 400
 * before anything runs, rather than failing half-way inside a transaction. A body that is not JSON is left
 * to validation (400 invalid_json).
 */
function refuseUnstorableText(text: string): void {
  if (!mayHoldUnstorableText(text)) return;
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    return;
  }
  const problem = unstorableText(body);
  if (problem) throw new ApiError("invalid_request", `Strings may not contain ${problem}.`);
}

/**
 * Reads the body up to API_MAX_BODY_BYTES as it streams (with or without Content-Length: a chunked upload
 * is cut off as soon as it passes the limit) and hands the handlers a buffered copy. Runs before
 * validation and the idempotency layer, so a refused body stores nothing: no idempotency key, no change.
 */
export const limitBody: MiddlewareHandler<ApiEnv> = async (c, next) => {
  const raw = c.req.raw;
  // GET and HEAD carry no body we read, and a Request of either may not be built with one.
  if (raw.body && raw.method !== "GET" && raw.method !== "HEAD") {
    const { text } = await readBody(raw, API_MAX_BODY_BYTES);
    refuseUnstorableText(text);
    // Bytes, not the string: a string body would give a request sent without Content-Type a text/plain one.
    c.req.raw = new Request(raw, { body: new TextEncoder().encode(text) });
  }
  await next();
};
