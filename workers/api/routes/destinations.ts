import { type OpenAPIHono, z } from "@hono/zod-openapi";
import { parseKeyring } from "../../../functions/destinations/crypto";
import { loadTestSend, recordTestSend, sendTestEvent } from "../../../functions/destinations/testSend";
import {
  deleteProjectDestination,
  destinationJson,
  getProjectDestination,
  listProjectDestinations,
  putProjectDestination,
} from "../../../functions/destinations/verbs";
import { defaultSendDeps } from "../../../functions/relay/send";
import { DESTINATION_KINDS, type DestinationKind } from "../../../shared/destinations";
import { parseEnv } from "../../common/parseEnv";
import { requires } from "../access";
import type { ApiEnv } from "../context";
import { destinationVarsSchema } from "../env";
import { mutation, mutationWithCall, query } from "../handlers";
import { apiRoute, dateTime, ErrorSchema, errorResponses, IdempotencyHeaderSchema, json } from "../schemas";

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

const KIND_PUT_OPERATIONS: Record<DestinationKind, string> = {
  meta: "putMetaDestination",
  tiktok: "putTiktokDestination",
  "apple-search-ads": "putAppleSearchAdsDestination",
};

const unavailable = {
  503: json(
    ErrorSchema,
    "Destination keys unavailable (destination_keys_unavailable), or the API briefly unavailable " +
      "(database_unavailable); retry",
  ),
};

const putRoute = <S extends z.ZodType>(kind: DestinationKind, schema: S) =>
  apiRoute({
    ...requires("admin"),
    method: "put",
    path: `/v1/projects/{projectId}/destinations/${kind}`,
    tags: ["Destinations"],
    operationId: KIND_PUT_OPERATIONS[kind],
    summary: `Create or replace the ${KIND_TITLES[kind]} destination (admin)`,
    description:
      `Creates the project's ${KIND_TITLES[kind]} destination (201) or replaces it (200). ` +
      "The access token is write-only and stored encrypted; omit it on a replace to keep the stored one.",
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

const listRoute = apiRoute({
  ...requires("developer"),
  method: "get",
  path: "/v1/projects/{projectId}/destinations",
  tags: ["Destinations"],
  operationId: "listDestinations",
  summary: "List a project's destinations (at most one per platform)",
  description:
    "Lists a project's conversion-relay destinations (at most one per platform). Tokens are never shown, only `tokenLast4`.",
  request: { params: ProjectParams },
  responses: { 200: json(DestinationListSchema, "The destinations"), ...errorResponses(403, 404) },
});

const getRoute = apiRoute({
  ...requires("developer"),
  method: "get",
  path: "/v1/projects/{projectId}/destinations/{kind}",
  tags: ["Destinations"],
  operationId: "getDestination",
  summary: "Get a destination",
  description: "Returns one destination of a project. The access token is never shown, only `tokenLast4`.",
  request: { params: KindParams },
  responses: { 200: json(DestinationSchema, "The destination"), ...errorResponses(400, 403, 404) },
});

const deleteRoute = apiRoute({
  ...requires("admin"),
  method: "delete",
  path: "/v1/projects/{projectId}/destinations/{kind}",
  tags: ["Destinations"],
  operationId: "deleteDestination",
  summary: "Delete a destination and its stored token (admin)",
  description: "Deletes a destination and its encrypted token; nothing more is relayed to that platform.",
  request: { params: KindParams, headers: IdempotencyHeaderSchema },
  responses: { 204: { description: "Deleted" }, ...errorResponses(400, 403, 404, 409, 422) },
});

const testRoute = apiRoute({
  ...requires("admin"),
  method: "post",
  path: "/v1/projects/{projectId}/destinations/{kind}/test",
  tags: ["Destinations"],
  operationId: "testDestination",
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

export function registerDestinationRoutes(app: OpenAPIHono<ApiEnv>) {
  // One registration per kind, so each body is typed by its own schema (z.infer) as that kind's input.
  const keyring = (c: { env: ApiEnv["Bindings"] }) => () => parseKeyring(c.env);
  app.openapi(putRoute("meta", PutMetaSchema), (c) =>
    mutation(c, async (ctx) => {
      const input = { ...c.req.valid("json"), kind: "meta" as const };
      const put = await putProjectDestination(ctx, c.req.valid("param").projectId, input, keyring(c));
      return c.json(destinationJson(put.destination), put.created ? 201 : 200);
    }),
  );
  app.openapi(putRoute("tiktok", PutTikTokSchema), (c) =>
    mutation(c, async (ctx) => {
      const input = { ...c.req.valid("json"), kind: "tiktok" as const };
      const put = await putProjectDestination(ctx, c.req.valid("param").projectId, input, keyring(c));
      return c.json(destinationJson(put.destination), put.created ? 201 : 200);
    }),
  );
  app.openapi(putRoute("apple-search-ads", PutAppleSchema), (c) =>
    mutation(c, async (ctx) => {
      const input = { ...c.req.valid("json"), kind: "apple-search-ads" as const };
      const put = await putProjectDestination(ctx, c.req.valid("param").projectId, input, keyring(c));
      return c.json(destinationJson(put.destination), put.created ? 201 : 200);
    }),
  );

  app.openapi(listRoute, (c) =>
    query(c, async (ctx) => {
      const data = (await listProjectDestinations(ctx, c.req.valid("param").projectId)).map(destinationJson);
      return c.json({ object: "list" as const, data, hasMore: false as const, nextCursor: null }, 200);
    }),
  );

  app.openapi(getRoute, (c) =>
    query(c, async (ctx) => {
      const { projectId, kind } = c.req.valid("param");
      return c.json(destinationJson(await getProjectDestination(ctx, projectId, kind)), 200);
    }),
  );

  app.openapi(deleteRoute, (c) =>
    mutation(c, async (ctx) => {
      const { projectId, kind } = c.req.valid("param");
      await deleteProjectDestination(ctx, projectId, kind);
      return c.body(null, 204);
    }),
  );

  // No transaction is held while the platform is called (mutationWithCall): load, call, record.
  app.openapi(testRoute, (c) => {
    const { projectId, kind } = c.req.valid("param");
    const now = c.get("now");
    return mutationWithCall(c, {
      load: (ctx) => loadTestSend(ctx, projectId, kind, () => parseKeyring(c.env)),
      call: (destination) => {
        const vars = parseEnv(destinationVarsSchema, c.env);
        const endpoints = {
          metaApiBase: vars.META_API_BASE,
          tiktokApiBase: vars.TIKTOK_API_BASE,
          appleAdServicesUrl: vars.APPLE_ADSERVICES_URL,
          timeoutMs: vars.DESTINATION_TEST_TIMEOUT_MS,
          appleNotFoundRetryIntervalMs: 0,
        };
        return sendTestEvent(destination, now, endpoints, { ...defaultSendDeps, now: () => now });
      },
      record: async (ctx, answer) => {
        await recordTestSend(ctx, projectId, answer);
        return c.json(answer, 200);
      },
    });
  });
}
