import { type Context, Hono } from "hono";
import { cors } from "hono/cors";
import { enqueueEvents } from "../../functions/ingest/enqueueEvents";
import { type NormalizedBatch, normalizeEvents } from "../../functions/ingest/normalizeEvents";
import { parseBatch } from "../../functions/ingest/parseBatch";
import { boundedUserAgent, parseUserAgent } from "../../functions/ingest/parseUserAgent";
import { isSdkKeyShaped, resolveSdkKey, type SdkKeyIdentity } from "../../functions/ingest/resolveSdkKey";
import {
  normalizeSegmentMessages,
  parseSegmentBody,
  SEGMENT_BATCH_PATHS,
  SEGMENT_LIMITS,
  SEGMENT_TYPES,
  type SegmentType,
} from "../../functions/ingest/segmentMessages";
import { writeKeyFromBasicAuth } from "../../functions/ingest/segmentWriteKey";
import { closeDb, createDb } from "../../shared/db";
import { ApiError } from "../../shared/errors";
import { sha256Hex } from "../../shared/hash";
import { newId } from "../../shared/ids";
import { INGEST_LIMITS } from "../../shared/limits";
import { createLogger, type Logger } from "../../shared/logger";
import { mayHoldUnstorableText } from "../../shared/storableText";
import { errorResponse } from "../common/errorResponse";
import { KeyLookupCache } from "../common/keyLookupCache";
import { parseEnv } from "../common/parseEnv";
import { readBody } from "../common/readBody";
import { type IngestVars, ingestVarsSchema } from "./env";
import { ingestOpenApiDocument } from "./openapi";
import { sdkKeyFromRequest } from "./sdkKeyFromRequest";

type ReadBody = Awaited<ReturnType<typeof readBody>>;

type IngestEnv = {
  Bindings: IngestBindings;
  Variables: { requestId: string; log: Logger; vars: IngestVars };
};

const log = createLogger({ worker: "ingest" });
/** Rate limit window of INGEST_RATE_LIMITER in wrangler.toml (seconds): what Retry-After promises. */
const RATE_LIMIT_PERIOD_SECONDS = 10;

let keyLookups: KeyLookupCache<SdkKeyIdentity> | undefined;

export function createIngestApp(clock: () => Date = () => new Date()) {
  const app = new Hono<IngestEnv>();

  app.use("*", async (c, next) => {
    const requestId = newId("req");
    c.set("requestId", requestId);
    // The request's logger: every line it writes carries the request id.
    c.set("log", log.child({ requestId }));
    const vars = parseEnv(ingestVarsSchema, c.env);
    // Found keys and unknown keys alike, for SDK_KEY_CACHE_TTL_SECONDS: how long a revocation or an archive
    // may take to reach a warm isolate.
    const ttlMs = vars.SDK_KEY_CACHE_TTL_SECONDS * 1000;
    keyLookups ??= new KeyLookupCache({ knownTtlMs: ttlMs, unknownTtlMs: ttlMs });
    c.set("vars", vars);
    await next();
    c.header("X-Request-Id", c.get("requestId"));
  });

  // Publishable keys and no cookies: any origin may send events.
  const anyOrigin = cors({
    origin: "*",
    allowMethods: ["POST", "OPTIONS"],
    allowHeaders: ["Authorization", "Content-Type"],
    exposeHeaders: ["X-Request-Id", "Retry-After"],
    maxAge: 86400,
  });
  app.use("/l/*", anyOrigin);
  app.use("/v1/*", anyOrigin);

  app.get("/l/openapi.json", (c) => c.json(ingestOpenApiDocument(new URL(c.req.url).origin)));

  /**
   * The checks every ingest route shares, cheapest first so traffic without a valid key costs next to
   * nothing: the exact key shape, the declared size, this isolate's cache (unknown keys too), then the
   * database; only a real key reaches the rate limiter. Returns the key's project.
   */
  async function admit(
    c: Context<IngestEnv>,
    secret: string | null | undefined,
    receivedAt: Date,
    howToAuthenticate: string,
    body: { maxBytes: number; tooLarge: () => ApiError },
  ): Promise<SdkKeyIdentity> {
    const vars = c.get("vars");
    if (!secret || !isSdkKeyShaped(secret)) throw new ApiError("unauthorized", howToAuthenticate);

    const declared = Number(c.req.header("Content-Length") ?? "0");
    if (declared > body.maxBytes) throw body.tooLarge();

    const keySha256 = await sha256Hex(secret);
    const key = await keyLookups!.lookup(keySha256, receivedAt.getTime(), async () => {
      const db = createDb({
        databaseUrl: vars.DATABASE_URL,
        wsProxy: vars.NEON_WS_PROXY,
        role: "layers_ingest",
        maxConnections: 1,
      });
      try {
        return await resolveSdkKey(db, keySha256);
      } catch (error) {
        c.get("log").error("sdk key lookup failed", { error });
        throw new ApiError(
          "database_unavailable",
          "Ingest is briefly unavailable; retry with the same event ids.",
        );
      } finally {
        c.executionCtx.waitUntil(closeDb(db));
      }
    });
    if (!key) throw new ApiError("unauthorized", "Unknown or revoked SDK key.");
    if (key.archived)
      throw new ApiError("project_archived", "This project is archived and accepts no events.");

    const { success } = await c.env.INGEST_RATE_LIMITER.limit({ key: key.keyId });
    if (!success) {
      throw new ApiError("rate_limited", "Too many requests for this SDK key; retry after the delay given.", {
        headers: { "Retry-After": String(RATE_LIMIT_PERIOD_SECONDS) },
      });
    }
    return key;
  }

  /** Resolves once the queue holds every accepted event: only then may a route answer success. */
  async function queueAccepted(
    c: Context<IngestEnv>,
    key: SdkKeyIdentity,
    receivedAt: Date,
    { accepted, rejected }: NormalizedBatch,
  ): Promise<void> {
    try {
      await enqueueEvents(
        c.env.EVENTS_QUEUE,
        { orgId: key.orgId, projectId: key.projectId, receivedAt: receivedAt.toISOString() },
        accepted,
      );
    } catch (error) {
      c.get("log").error("enqueue failed", { projectId: key.projectId, error });
      throw new ApiError("queue_unavailable", "Events could not be queued; retry with the same event ids.");
    }
    c.get("log").info("events accepted", {
      projectId: key.projectId,
      accepted: accepted.length,
      rejected: rejected.length,
    });
  }

  /** What every route's normalisation knows about the request besides its events. */
  function requestContext(c: Context<IngestEnv>, key: SdkKeyIdentity, receivedAt: Date, body: ReadBody) {
    // request.cf carries the geo lookup Cloudflare already did; the IP itself is never read.
    const cf = c.req.raw.cf as { country?: string; region?: string } | undefined;
    return {
      receivedAt,
      retentionDays: key.eventRetentionDays,
      country: cf?.country ?? null,
      region: cf?.region ?? null,
      bodyBytes: body.bytes,
      bodyMayHoldUnstorableText: mayHoldUnstorableText(body.text),
    };
  }

  /**
   * readBody, plus Content-Encoding: gzip (analytics-ios gzips every batch): decompressed as it streams,
   * so the limits count decompressed bytes and a small body that inflates to gigabytes is cut off at the
   * limit like any other. The declared Content-Length (compressed) was checked against the limit already.
   */
  async function readSegmentBody(request: Request, maxBytes: number, tooLarge: () => ApiError) {
    const encoding = request.headers.get("Content-Encoding")?.trim().toLowerCase();
    if (encoding !== "gzip" || !request.body) return readBody(request, maxBytes, tooLarge);
    const gunzipped = {
      headers: request.headers,
      body: request.body.pipeThrough(new DecompressionStream("gzip")),
    };
    try {
      return await readBody(gunzipped, maxBytes, tooLarge);
    } catch (error) {
      if (error instanceof ApiError) throw error;
      throw new ApiError("invalid_body", "The body is sent as Content-Encoding: gzip but is not valid gzip.");
    }
  }

  app.post("/l/events", async (c) => {
    const receivedAt = clock();
    // Authorization, or ?key= from a browser sending without a CORS preflight (sdkKeyFromRequest.ts).
    const secret = sdkKeyFromRequest(c.req.raw);
    const maxBytes = INGEST_LIMITS.maxBodyBytes;
    const tooLarge = () =>
      new ApiError("payload_too_large", `The request body may be at most ${maxBytes} bytes.`);
    const key = await admit(
      c,
      secret,
      receivedAt,
      "Send the project's SDK key as `Authorization: Bearer lp_pk_…`.",
      { maxBytes, tooLarge },
    );

    const body = await readBody(c.req.raw, maxBytes, tooLarge);
    const batch = parseBatch(body.text);
    const normalized = await normalizeEvents(batch.events, batch.sentAt, {
      ...requestContext(c, key, receivedAt, body),
      userAgent: parseUserAgent(c.req.header("User-Agent")),
      relayUserAgent: boundedUserAgent(c.req.header("User-Agent")),
    });
    if (normalized.accepted.length === 0) {
      throw new ApiError("invalid_events", "No event in the request is valid.", {
        details: { rejected: normalized.rejected },
      });
    }
    await queueAccepted(c, key, receivedAt, normalized);
    return c.json({ accepted: normalized.accepted.length, rejected: normalized.rejected }, 202);
  });

  app.all("/l/events", () => {
    throw new ApiError("method_not_allowed", "Use POST to send events.");
  });

  // Segment's HTTP Tracking API, for partners whose Segment libraries should send here unchanged (README,
  // "Segment-compatible ingest"). Segment's contract: the write key as Basic auth user, 200
  // {"success": true} whatever happens to single messages, 400 for invalid JSON and for sizes.
  const segmentRoute = (route: SegmentType | "batch") => async (c: Context<IngestEnv>) => {
    const receivedAt = clock();
    const batch = route === "batch";
    const maxBytes = batch ? SEGMENT_LIMITS.maxBatchBytes : SEGMENT_LIMITS.maxMessageBytes;
    const tooLarge = batch
      ? () => new ApiError("batch_too_large", `A batch request may be at most ${maxBytes} bytes.`)
      : () => new ApiError("message_too_large", `A message may be at most ${maxBytes} bytes.`);
    const key = await admit(
      c,
      writeKeyFromBasicAuth(c.req.header("Authorization")),
      receivedAt,
      "Send the project's SDK key as the write key: HTTP Basic auth with the key as user and an empty password.",
      { maxBytes, tooLarge },
    );

    const body = await readSegmentBody(c.req.raw, maxBytes, tooLarge);
    const request = parseSegmentBody(body.text, body.bytes, route);
    const normalized = await normalizeSegmentMessages(request, requestContext(c, key, receivedAt, body));
    if (normalized.accepted.length > 0) await queueAccepted(c, key, receivedAt, normalized);
    else
      c.get("log").info("no segment message accepted", {
        projectId: key.projectId,
        rejected: normalized.rejected.length,
      });
    // Segment's answer, plus what it does not say: how many were queued and why the others were not.
    return c.json(
      { success: true, accepted: normalized.accepted.length, rejected: normalized.rejected },
      200,
    );
  };
  // Segment's own libraries post batches to other paths of the same API: /v1/b (analytics-swift,
  // analytics-kotlin) and /v1/import (analytics-java). Without them their batches get 404, which they drop.
  const paths = [
    ...SEGMENT_BATCH_PATHS.map((path) => [path, "batch"] as const),
    ...SEGMENT_TYPES.map((t) => [t, t] as const),
  ];
  for (const [path, route] of paths) {
    app.post(`/v1/${path}`, segmentRoute(route));
    app.all(`/v1/${path}`, () => {
      throw new ApiError("method_not_allowed", "Use POST to send messages.");
    });
  }

  app.notFound((c) =>
    errorResponse(
      c,
      new ApiError(
        "not_found",
        "No such endpoint. Events go to POST /l/events (or Segment's POST /v1/batch).",
      ),
    ),
  );

  app.onError((error, c) => {
    if (error instanceof ApiError) return errorResponse(c, error);
    // The request's logger, or the Worker's when the failure came before it was made.
    (c.get("log") ?? log).error("unhandled error", { error });
    return errorResponse(c, new ApiError("internal_error", "Something went wrong on our side."));
  });

  return app;
}
