import { createRoute, type OpenAPIHono, z } from "@hono/zod-openapi";
import type { Context } from "hono";
import { KeyringError, parseKeyring, TokenDecryptError } from "../../../functions/destinations/crypto";
import {
  type DestinationInput,
  type DestinationView,
  deleteDestination,
  getDestination,
  listDestinations,
  loadDestination,
  putDestination,
} from "../../../functions/destinations/store";
import { defaultSendDeps, sendToDestination } from "../../../functions/relay/send";
import { DESTINATION_KINDS, type DestinationKind, type Keyring } from "../../../shared/destinations";
import { ApiError } from "../../../shared/errors";
import type { RelayEvent } from "../../../shared/schemas/relay";
import { parseEnv } from "../../common/parseEnv";
import { requires } from "../access";
import type { ApiEnv } from "../context";
import { destinationVarsSchema } from "../env";
import { audit, mutation, query, type RequestScope } from "../handlers";
import { log } from "../middleware";
import { dateTime, ErrorSchema, errorResponses, IdempotencyHeaderSchema, json } from "../schemas";
import { visibleProject } from "./projects";

// Conversion-relay destinations, one per project and platform. Roles: reading needs developer (the ids are
// an ad account's configuration, not for read-only keys); creating, replacing, deleting and test-sending
// need admin, because they decide where end users' (hashed) data goes and use the stored credential.
// The access token is write-only: no response, audit row or log ever holds it, only `tokenLast4`.

/** Ad-platform access tokens: printable ASCII without spaces; Meta's run to ~250, TikTok's are 40. */
const TOKEN = { min: 20, max: 1024 };
const accessToken = z
  .string()
  .min(TOKEN.min)
  .max(TOKEN.max)
  .regex(/^[\x21-\x7E]+$/, "Printable ASCII without spaces.")
  .openapi({
    description:
      `The platform's access token (${TOKEN.min}–${TOKEN.max} characters). Write-only: answers show ` +
      "`tokenLast4`. Omit it when replacing a destination to keep the stored token.",
    example: "EAAGm0PX4ZCpsBAExampleAccessToken0000",
  });
const testEventCode = z
  .string()
  .regex(/^[A-Za-z0-9_-]{1,64}$/, "1–64 letters, digits, '_' or '-'.")
  .nullable()
  .default(null)
  .openapi({
    description: "Routes events to the platform's test-events view (test_event_code).",
    example: "TEST12345",
  });
const enabled = z.boolean().default(true).openapi({ description: "Off: nothing is relayed (default on)." });

const PutMetaSchema = z
  .object({
    enabled,
    datasetId: z
      .string()
      .regex(/^[0-9]{5,20}$/, "5–20 digits.")
      .openapi({ description: "Meta dataset (pixel) id.", example: "123456789012345" }),
    accessToken: accessToken.optional(),
    testEventCode,
    sendDeviceIds: z.boolean().default(false).openapi({
      description: "Send IDFA/GAID as `madid` (only for events whose ads consent was not refused).",
    }),
  })
  .strict()
  .openapi("PutMetaDestination", {
    example: {
      enabled: true,
      datasetId: "123456789012345",
      accessToken: "EAAGm0PX4ZCpsBAExampleAccessToken0000",
      testEventCode: "TEST12345",
      sendDeviceIds: false,
    },
  });

const PutTikTokSchema = z
  .object({
    enabled,
    pixelCode: z
      .string()
      .regex(/^[A-Z0-9]{10,32}$/, "10–32 upper-case letters and digits.")
      .openapi({ description: "TikTok pixel code.", example: "CBCHRKJC77U8JBE2K1EG" }),
    accessToken: accessToken.optional(),
    testEventCode,
  })
  .strict()
  .openapi("PutTikTokDestination", {
    example: {
      enabled: true,
      pixelCode: "CBCHRKJC77U8JBE2K1EG",
      accessToken: "exampleTikTokAccessToken000000000000000a",
      testEventCode: null,
    },
  });

const PutAppleSchema = z
  .object({ enabled })
  .strict()
  .openapi("PutAppleSearchAdsDestination", { example: { enabled: true } });

export const DestinationSchema = z
  .object({
    object: z.literal("destination"),
    projectId: z.string(),
    kind: z.enum(DESTINATION_KINDS),
    enabled: z.boolean(),
    status: z.enum(["active", "failing"]).openapi({
      description: "failing: the last batch was dead-lettered after its retries; a later success clears it.",
    }),
    failingSince: dateTime().nullable(),
    tokenLast4: z
      .string()
      .nullable()
      .openapi({ description: "Last 4 characters of the token; null for Apple." }),
    datasetId: z.string().optional().openapi({ description: "Meta only." }),
    pixelCode: z.string().optional().openapi({ description: "TikTok only." }),
    testEventCode: z.string().nullable().optional().openapi({ description: "Meta and TikTok." }),
    sendDeviceIds: z.boolean().optional().openapi({ description: "Meta only." }),
    createdAt: dateTime(),
    updatedAt: dateTime(),
  })
  .openapi("Destination");

export const DestinationListSchema = z
  .object({
    object: z.literal("list"),
    data: z.array(DestinationSchema),
    hasMore: z.literal(false),
    nextCursor: z.null(),
  })
  .openapi("DestinationList");

export const TestSendResultSchema = z
  .object({
    object: z.literal("destination_test"),
    kind: z.enum(DESTINATION_KINDS),
    outcome: z.enum(["delivered", "retry", "rejected", "skipped"]).openapi({
      description:
        "delivered: the platform accepted the event; rejected: it refused it (see error); retry: it was " +
        "unreachable, timed out or rate-limited; skipped: the event was left out before sending.",
    }),
    platformStatus: z.number().int().nullable().openapi({ description: "The platform's HTTP status." }),
    error: z
      .string()
      .nullable()
      .openapi({ description: "The platform's message (tokens and personal data cut)." }),
    eventId: z.string(),
    sentAt: dateTime(),
  })
  .openapi("DestinationTestResult");

const projectId = z
  .string()
  .max(64)
  .openapi({ param: { name: "projectId", in: "path" } });
const ProjectParams = z.object({ projectId });
const KindParams = z.object({
  projectId,
  kind: z.enum(DESTINATION_KINDS).openapi({ param: { name: "kind", in: "path" } }),
});

const KIND_TITLES: Record<DestinationKind, string> = {
  meta: "Meta Conversions API",
  tiktok: "TikTok Events API",
  "apple-search-ads": "Apple Search Ads attribution",
};

export function destinationJson(d: DestinationView) {
  return {
    object: "destination" as const,
    projectId: d.projectId,
    kind: d.kind,
    enabled: d.enabled,
    status: d.status,
    failingSince: d.failingSince?.toISOString() ?? null,
    tokenLast4: d.tokenLast4,
    ...(d.kind === "meta"
      ? { datasetId: d.datasetId, testEventCode: d.testEventCode, sendDeviceIds: d.sendDeviceIds }
      : {}),
    ...(d.kind === "tiktok" ? { pixelCode: d.pixelCode, testEventCode: d.testEventCode } : {}),
    createdAt: d.createdAt.toISOString(),
    updatedAt: d.updatedAt.toISOString(),
  };
}

/** The keyring from the Worker secrets; a deployment without it answers 503, never with a stack trace. */
function keyringOf(c: Context<ApiEnv>): Keyring {
  try {
    return parseKeyring(c.env);
  } catch (error) {
    if (!(error instanceof KeyringError)) throw error;
    log.error("destination keyring unavailable", { requestId: c.get("requestId"), reason: error.message });
    throw new ApiError(
      "destination_keys_unavailable",
      "Destination tokens cannot be encrypted or read right now.",
    );
  }
}

/** A stored token whose key left the ring: an operator's rotation went wrong, not the caller's request. */
function unreadable(c: Context<ApiEnv>, error: TokenDecryptError): ApiError {
  log.error("destination token unreadable", { requestId: c.get("requestId"), reason: error.message });
  return new ApiError(
    "destination_keys_unavailable",
    "The stored token cannot be decrypted (its key is no longer configured); PUT the token again.",
  );
}

const notFound = (projectId: string, kind: DestinationKind) =>
  new ApiError("not_found", `Project ${projectId} has no ${kind} destination.`);

const unavailable = { 503: json(ErrorSchema, "Destination keys unavailable (destination_keys_unavailable)") };

const putRoute = (kind: DestinationKind, schema: z.ZodTypeAny) =>
  createRoute({
    ...requires("admin"),
    method: "put",
    path: `/v1/projects/{projectId}/destinations/${kind}`,
    tags: ["Destinations"],
    summary: `Create or replace the ${KIND_TITLES[kind]} destination (admin)`,
    request: {
      params: ProjectParams,
      headers: IdempotencyHeaderSchema,
      body: { content: { "application/json": { schema } }, required: true },
    },
    responses: {
      200: json(DestinationSchema, "Replaced"),
      201: json(DestinationSchema, "Created"),
      ...errorResponses(400, 403, 404, 409, 422),
      ...unavailable,
    },
  });

const listRoute = createRoute({
  ...requires("developer"),
  method: "get",
  path: "/v1/projects/{projectId}/destinations",
  tags: ["Destinations"],
  summary: "List a project's destinations (at most one per platform)",
  request: { params: ProjectParams },
  responses: { 200: json(DestinationListSchema, "The destinations"), ...errorResponses(403, 404) },
});

const getRoute = createRoute({
  ...requires("developer"),
  method: "get",
  path: "/v1/projects/{projectId}/destinations/{kind}",
  tags: ["Destinations"],
  summary: "Get a destination",
  request: { params: KindParams },
  responses: { 200: json(DestinationSchema, "The destination"), ...errorResponses(400, 403, 404) },
});

const deleteRoute = createRoute({
  ...requires("admin"),
  method: "delete",
  path: "/v1/projects/{projectId}/destinations/{kind}",
  tags: ["Destinations"],
  summary: "Delete a destination and its stored token (admin)",
  request: { params: KindParams, headers: IdempotencyHeaderSchema },
  responses: { 204: { description: "Deleted" }, ...errorResponses(400, 403, 404, 409, 422) },
});

const testRoute = createRoute({
  ...requires("admin"),
  method: "post",
  path: "/v1/projects/{projectId}/destinations/{kind}/test",
  tags: ["Destinations"],
  summary: "Send one synthetic event with the stored settings and return the platform's answer (admin)",
  description:
    "Meta and TikTok only (Apple Search Ads attribution needs a token from a real device: " +
    "422 test_send_unsupported). Works on a disabled destination. The event is named `purchase`, " +
    "user id `layers-test-send`; set testEventCode to keep it out of live data.",
  request: { params: KindParams, headers: IdempotencyHeaderSchema },
  responses: {
    200: json(TestSendResultSchema, "What the platform answered"),
    ...errorResponses(400, 403, 404, 409, 422),
    ...unavailable,
  },
});

function inputFor(kind: DestinationKind, body: Record<string, unknown>): DestinationInput {
  // The route's schema validated `body` for this kind; this only names the shape.
  return { ...body, kind } as DestinationInput;
}

/** The synthetic event of a test-send: recognisable on the platform, no real person's data. */
function syntheticEvent(now: Date): RelayEvent {
  return {
    eventId: `layers_test_${crypto.randomUUID()}`,
    name: "purchase",
    userId: "layers-test-send",
    timestamp: now.toISOString(),
    appId: null,
    os: null,
    osVersion: null,
    deviceModel: null,
    browser: null,
    country: null,
    emailSha256: null,
    phoneSha256: null,
    phoneE164Sha256: null,
    properties: { value: 1, currency: "USD", layers_test_send: true },
    consentAds: null,
    // A website event, so it carries the two fields Meta requires of one.
    userAgent: "Layers-Test-Send/1.0",
    pageUrl: "https://example.com/layers-test-send",
  };
}

async function auditedPut(
  c: Context<ApiEnv>,
  s: RequestScope,
  projectId: string,
  kind: DestinationKind,
  body: Record<string, unknown>,
) {
  await visibleProject(s, projectId);
  const input = inputFor(kind, body);
  // Apple has no token, so it needs no keyring: it works even where the secrets are not set up yet.
  const keyring = kind === "apple-search-ads" ? { currentKeyId: "", keys: {} } : keyringOf(c);
  let outcome: Awaited<ReturnType<typeof putDestination>>;
  try {
    outcome = await putDestination(s.tx, s.orgId, projectId, input, keyring, s.now);
  } catch (error) {
    if (error instanceof TokenDecryptError) throw unreadable(c, error);
    throw error;
  }
  if (!outcome.ok) {
    throw new ApiError("invalid_request", "accessToken is required when creating this destination.", {
      details: [{ field: "accessToken", message: "Required when the destination does not exist yet." }],
    });
  }
  const after = destinationJson(outcome.after);
  await audit(
    s,
    outcome.before ? "destination.updated" : "destination.created",
    { type: "destination", id: `${projectId}/${kind}` },
    {
      ...(outcome.before ? { before: { ...destinationJson(outcome.before), tokenReplaced: false } } : {}),
      // tokenReplaced shows a new token in the diff even when its last four characters are the same.
      after: { ...after, tokenReplaced: "accessToken" in body && body.accessToken !== undefined },
    },
  );
  return c.json(after, outcome.before ? 200 : 201);
}

export function registerDestinationRoutes(app: OpenAPIHono<ApiEnv>) {
  const puts: [DestinationKind, z.ZodTypeAny][] = [
    ["meta", PutMetaSchema],
    ["tiktok", PutTikTokSchema],
    ["apple-search-ads", PutAppleSchema],
  ];
  for (const [kind, schema] of puts) {
    app.openapi(putRoute(kind, schema), (c) =>
      mutation(c, (s) =>
        auditedPut(
          c,
          s,
          c.req.valid("param").projectId,
          kind,
          c.req.valid("json") as Record<string, unknown>,
        ),
      ),
    );
  }

  app.openapi(listRoute, (c) =>
    query(c, async (s) => {
      const { projectId } = c.req.valid("param");
      await visibleProject(s, projectId);
      const data = (await listDestinations(s.tx, projectId)).map(destinationJson);
      return c.json({ object: "list" as const, data, hasMore: false as const, nextCursor: null }, 200);
    }),
  );

  app.openapi(getRoute, (c) =>
    query(c, async (s) => {
      const { projectId, kind } = c.req.valid("param");
      await visibleProject(s, projectId);
      const found = await getDestination(s.tx, projectId, kind);
      if (!found) throw notFound(projectId, kind);
      return c.json(destinationJson(found), 200);
    }),
  );

  app.openapi(deleteRoute, (c) =>
    mutation(c, async (s) => {
      const { projectId, kind } = c.req.valid("param");
      await visibleProject(s, projectId);
      const removed = await deleteDestination(s.tx, projectId, kind);
      if (!removed) throw notFound(projectId, kind);
      await audit(
        s,
        "destination.deleted",
        { type: "destination", id: `${projectId}/${kind}` },
        { before: destinationJson(removed) },
      );
      return c.body(null, 204);
    }),
  );

  app.openapi(testRoute, (c) =>
    mutation(c, async (s) => {
      const { projectId, kind } = c.req.valid("param");
      await visibleProject(s, projectId);
      if (kind === "apple-search-ads") {
        throw new ApiError(
          "test_send_unsupported",
          "Apple Search Ads attribution has no test event: it needs an attribution token from a real device.",
        );
      }
      const keyring = keyringOf(c);
      let destination: Awaited<ReturnType<typeof loadDestination>>;
      try {
        destination = await loadDestination(s.tx, projectId, kind, keyring);
      } catch (error) {
        if (error instanceof TokenDecryptError) throw unreadable(c, error);
        throw error;
      }
      if (!destination) throw notFound(projectId, kind);
      const vars = parseEnv(destinationVarsSchema, c.env);
      const event = syntheticEvent(s.now);
      const result = await sendToDestination(
        destination,
        [event],
        {
          metaApiBase: vars.META_API_BASE,
          tiktokApiBase: vars.TIKTOK_API_BASE,
          appleAdServicesUrl: vars.APPLE_ADSERVICES_URL,
          timeoutMs: vars.DESTINATION_TEST_TIMEOUT_MS,
          appleNotFoundRetryIntervalMs: 0,
        },
        { ...defaultSendDeps, now: () => s.now },
      );
      const answer = {
        object: "destination_test" as const,
        kind,
        outcome: result.kind === "delivered" && result.sent === 0 ? ("skipped" as const) : result.kind,
        platformStatus: result.status,
        error:
          result.kind !== "delivered"
            ? result.error
            : result.sent === 0
              ? `Left out before sending: ${result.skipped.map((k) => k.reason).join(", ")}`
              : null,
        eventId: event.eventId,
        sentAt: s.now.toISOString(),
      };
      await audit(
        s,
        "destination.test_sent",
        { type: "destination", id: `${projectId}/${kind}` },
        {
          after: { outcome: answer.outcome, platformStatus: answer.platformStatus, eventId: answer.eventId },
        },
      );
      return c.json(answer, 200);
    }),
  );
}
