import { type OpenAPIHono, z } from "@hono/zod-openapi";
import { exportUserEvents } from "../../../functions/userData/exportUserEvents";
import { findUsers, userDataHeader, userEvents } from "../../../functions/userData/verbs";
import { phoneCountrySchema } from "../../../shared/schemas/sdk-event";
import { requires } from "../access";
import type { ApiEnv } from "../context";
import { query } from "../handlers";
import { apiRoute, dateTime, errorResponses, json, listOf, MAX_PAGE_SIZE } from "../schemas";

// Access and portability (data-subject requests): what we hold for one end user, as JSON pages or as a
// streamed NDJSON export, and the lookup from an email/phone a partner holds to the user ids we know.
// Reading end-user data needs the developer role.

const sha256 = z.string().regex(/^[0-9a-fA-F]{64}$/, "must be a SHA-256 hex digest");

export const UserParams = z.object({
  projectId: z
    .string()
    .max(64)
    .openapi({ param: { name: "projectId", in: "path" } }),
  userId: z
    .string()
    .min(1)
    .max(256)
    .openapi({ param: { name: "userId", in: "path" }, description: "The SDK's user id (URL-encoded)." }),
});

export const UserEventSchema = z
  .object({
    id: z.string().openapi({ description: "The event id the SDK sent." }),
    object: z.literal("event"),
    name: z.string(),
    userId: z.string().nullable(),
    anonymousId: z.string().nullable().openapi({
      description:
        "The SDK's anonymous id for the device. An event without a userId is the user's because identify linked this anonymous id to them.",
    }),
    timestamp: dateTime(),
    receivedAt: dateTime(),
    appId: z.string().nullable(),
    os: z.string().nullable(),
    osVersion: z.string().nullable(),
    deviceModel: z.string().nullable(),
    browser: z.string().nullable(),
    country: z.string().nullable(),
    region: z.string().nullable(),
    emailSha256: z.string().nullable(),
    phoneSha256: z.string().nullable(),
    properties: z.record(z.string(), z.unknown()),
  })
  .openapi("UserEvent");

export const UserStateSchema = z
  .object({
    object: z.literal("user"),
    userId: z.string(),
    properties: z.record(z.string(), z.unknown()),
    firstSeenAt: dateTime(),
    lastSeenAt: dateTime(),
    emailSha256: z.string().nullable(),
    phoneSha256: z.string().nullable(),
  })
  .openapi("UserState");

const AppleAttributionSchema = z
  .object({
    object: z.literal("apple_attribution"),
    eventId: z.string().openapi({ description: "The event that carried the AdServices token." }),
    attribution: z.boolean(),
    orgId: z.number().int().nullable(),
    campaignId: z.number().int().nullable(),
    adGroupId: z.number().int().nullable(),
    keywordId: z.number().int().nullable(),
    adId: z.number().int().nullable(),
    claimType: z.string().nullable(),
    conversionType: z.string().nullable(),
    countryOrRegion: z.string().nullable(),
    attributedAt: dateTime(),
  })
  .openapi("AppleAttribution");

export const UserDataSchema = z
  .object({
    object: z.literal("user_data"),
    projectId: z.string(),
    userId: z.string(),
    anonymousIds: z.array(z.string()).openapi({
      description:
        "The anonymous ids identify linked to this user id. Their events sent before identify are among events, and a deletion by this user id erases them.",
    }),
    user: UserStateSchema.nullable().openapi({ description: "Current-state properties; null if none held." }),
    appleAttribution: AppleAttributionSchema.nullable().openapi({
      description: "The Apple Search Ads attribution record; null if none held.",
    }),
    events: listOf(UserEventSchema, "UserEventList"),
  })
  .openapi("UserData");

const UserEventsQuery = z.object({
  limit: z.coerce.number().int().min(1).max(MAX_PAGE_SIZE).default(20).openapi({ example: 20 }),
  starting_after: z
    .string()
    .max(128)
    .optional()
    .openapi({ description: "The last event id of the previous page (events.nextCursor)." }),
  order: z
    .enum(["desc", "asc"])
    .default("desc")
    .openapi({ description: "By event timestamp; newest first by default." }),
  from: z.iso.datetime().optional().openapi({ description: "Only events with timestamp ≥ from." }),
  to: z.iso.datetime().optional().openapi({ description: "Only events with timestamp < to." }),
});

const LookupSchema = z
  .object({
    email: z
      .string()
      .min(1)
      .max(320)
      .optional()
      .openapi({ description: "Hashed here (trim, lower-case, SHA-256); never stored or logged." }),
    phone: z
      .string()
      .min(1)
      .max(64)
      .optional()
      .openapi({
        description:
          "Hashed here as at ingest (SHA-256 of the E.164 digits, without +); never stored or logged. " +
          "A number without its country code needs phoneCountry, else it is hashed as its digits as sent.",
      }),
    phoneCountry: phoneCountrySchema.optional().openapi({
      description: "ISO 3166-1 alpha-2 country in which a national-format phone is read (phone only).",
      example: "US",
    }),
    emailSha256: sha256.optional(),
    phoneSha256: sha256.optional(),
  })
  .strict()
  .refine(
    (b) => [b.email, b.phone, b.emailSha256, b.phoneSha256].filter((v) => v !== undefined).length === 1,
    { message: "Send exactly one of email, phone, emailSha256, phoneSha256." },
  )
  .refine((b) => b.phoneCountry === undefined || b.phone !== undefined, {
    message: "phoneCountry applies to a raw phone only.",
    path: ["phoneCountry"],
  })
  .openapi("UserLookup", { example: { email: "Jane.Doe@example.com" } });

const UserMatchSchema = z
  .object({ object: z.literal("user_match"), userId: z.string() })
  .openapi("UserMatch");
export const UserMatchListSchema = z
  .object({ object: z.literal("list"), data: z.array(UserMatchSchema), hasMore: z.boolean() })
  .openapi("UserMatchList");

const getUserData = apiRoute({
  ...requires("developer"),
  method: "get",
  path: "/v1/projects/{projectId}/events/users/{userId}",
  tags: ["Data-subject requests"],
  operationId: "getUserData",
  summary: "Access: the events and current state held for one end user",
  description:
    "Cursor-paginated events (newest first by default) plus the user's current-state properties and hashed " +
    "identifiers. With `Accept: application/x-ndjson` the whole history (honouring order/from/to) is streamed: " +
    "the first line is the user_data header (without events), then one UserEvent per line.",
  request: { params: UserParams, query: UserEventsQuery },
  responses: {
    200: {
      description: "The user's data",
      content: {
        "application/json": { schema: UserDataSchema },
        "application/x-ndjson": { schema: z.string().openapi({ description: "One JSON object per line." }) },
      },
    },
    ...errorResponses(400, 403, 404),
  },
});

const lookup = apiRoute({
  ...requires("developer"),
  method: "post",
  path: "/v1/projects/{projectId}/users/lookup",
  tags: ["Data-subject requests"],
  operationId: "lookupUsers",
  summary: "Find the user ids behind an email or phone (or its SHA-256)",
  description:
    "Finds the user ids whose events carry an email or phone (raw, hashed here, or its SHA-256). At most 100 matches.",
  request: {
    params: UserParams.pick({ projectId: true }),
    body: { content: { "application/json": { schema: LookupSchema } }, required: true },
  },
  responses: {
    200: json(UserMatchListSchema, "Matching user ids (at most 100)"),
    ...errorResponses(400, 403, 404),
  },
});

export function registerUserDataRoutes(app: OpenAPIHono<ApiEnv>) {
  app.openapi(getUserData, (c) =>
    query(c, async (ctx) => {
      const { projectId, userId } = c.req.valid("param");
      const { limit, starting_after, order, from, to } = c.req.valid("query");
      const filter = { order, from: from ? new Date(from) : undefined, to: to ? new Date(to) : undefined };
      const header = await userDataHeader(ctx, projectId, userId);

      if ((c.req.header("Accept") ?? "").includes("application/x-ndjson")) {
        const { stream, done } = exportUserEvents(
          c.get("db"),
          { orgId: ctx.orgId, projectId, userId },
          filter,
          header,
        );
        c.get("defer")(done);
        return c.body(stream, 200, {
          "Content-Type": "application/x-ndjson",
          "Content-Disposition": `attachment; filename="user-data.ndjson"`,
        }) as never;
      }

      const events = await userEvents(ctx, projectId, userId, filter, {
        limit,
        startingAfter: starting_after,
      });
      return c.json({ ...header, events: { object: "list" as const, ...events } }, 200);
    }),
  );

  app.openapi(lookup, (c) =>
    query(c, async (ctx) => {
      const body = c.req.valid("json");
      const found = await findUsers(ctx, c.req.valid("param").projectId, {
        email: body.email ?? body.emailSha256,
        phone: body.phone ?? body.phoneSha256,
        phoneCountry: body.phoneCountry,
      });
      return c.json(
        {
          object: "list" as const,
          data: found.userIds.map((userId) => ({ object: "user_match" as const, userId })),
          hasMore: found.hasMore,
        },
        200,
      );
    }),
  );
}
