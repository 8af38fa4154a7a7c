import { type OpenAPIHono, z } from "@hono/zod-openapi";
import type { Delivery } from "../../../functions/relay/deliveries";
import { listProjectDeliveries, replayDeadLetters } from "../../../functions/relayDeliveries/verbs";
import { DESTINATION_KINDS } from "../../../shared/destinations";
import { requires } from "../access";
import type { ApiEnv } from "../context";
import { mutation, query } from "../handlers";
import {
  apiRoute,
  dateTime,
  errorResponses,
  IdempotencyHeaderSchema,
  json,
  listOf,
  PageQuerySchema,
  page,
} from "../schemas";

// The relay's delivery log per destination (30 days) and the replay of dead-lettered batches.

export const DeliverySchema = z
  .object({
    id: z.string().openapi({ description: "The batch id.", example: "rb_5yqQ2hM8c6PnbX3vLk1R" }),
    object: z.literal("relay_delivery"),
    destination: z.enum(DESTINATION_KINDS),
    eventCount: z.number().int().openapi({ description: "Events in the batch." }),
    sentCount: z.number().int().openapi({ description: "Events the platform accepted." }),
    skipped: z.record(z.string(), z.number().int()).openapi({
      description: "Events left out before sending, per reason (too_old, not_a_standard_event, …).",
      example: { not_a_standard_event: 3 },
    }),
    status: z.enum(["delivered", "retrying", "rejected", "dead_lettered", "skipped"]),
    attempts: z.number().int(),
    responseCode: z.number().int().nullable().openapi({ description: "The platform's last HTTP status." }),
    error: z.string().nullable().openapi({ description: "The last error, without tokens or personal data." }),
    firstAttemptAt: dateTime(),
    lastAttemptAt: dateTime(),
  })
  .openapi("RelayDelivery", { description: "One batch sent to an ad platform. Kept 30 days." });

const Params = z.object({
  projectId: z
    .string()
    .max(64)
    .openapi({ param: { name: "projectId", in: "path" } }),
  kind: z.enum(DESTINATION_KINDS).openapi({ param: { name: "kind", in: "path" } }),
});

const DeliveryQuery = PageQuerySchema.extend({
  status: z.enum(["delivered", "retrying", "rejected", "dead_lettered", "skipped"]).optional(),
});

export const ReplaySchema = z
  .object({
    object: z.literal("relay_replay"),
    replayed: z
      .number()
      .int()
      .openapi({ description: "Dead-lettered batches queued again (≤ 100 per call)." }),
    hasMore: z.boolean().openapi({ description: "More dead letters wait; call again." }),
  })
  .openapi("RelayReplay");

function deliveryJson(d: Delivery) {
  return {
    id: d.id,
    object: "relay_delivery" as const,
    destination: d.destination,
    eventCount: d.eventCount,
    sentCount: d.sentCount,
    skipped: d.skipped,
    status: d.status,
    attempts: d.attempts,
    responseCode: d.responseCode,
    error: d.error,
    firstAttemptAt: d.firstAttemptAt.toISOString(),
    lastAttemptAt: d.lastAttemptAt.toISOString(),
  };
}

const list = apiRoute({
  ...requires("read_only"),
  method: "get",
  path: "/v1/projects/{projectId}/destinations/{kind}/deliveries",
  tags: ["Destinations"],
  operationId: "listRelayDeliveries",
  summary: "The relay's delivery log for a destination, newest first (30 days)",
  description:
    "Lists the batches the relay sent to this destination in the last 30 days, newest first, with each outcome and the platform's status.",
  request: { params: Params, query: DeliveryQuery },
  responses: {
    200: json(listOf(DeliverySchema, "RelayDeliveryList"), "A page of deliveries"),
    ...errorResponses(400, 403, 404),
  },
});

const replay = apiRoute({
  ...requires("admin"),
  method: "post",
  path: "/v1/projects/{projectId}/destinations/{kind}/dead-letters/replay",
  tags: ["Destinations"],
  operationId: "replayDeadLetters",
  summary: "Send dead-lettered batches again (after fixing the destination; admin or owner key)",
  description:
    "Queues up to 100 dead-lettered batches, oldest first, for another round of attempts. Needs an admin " +
    "or owner key, like test-send: it sends data to the platform. Device ids are not kept with dead " +
    "letters, so replayed Meta events carry no madid. Apple Search Ads dead letters cannot be replayed " +
    "(422 replay_unsupported): their AdServices tokens are credentials and are never stored; the app " +
    "sends a fresh token with its next event.",
  request: { params: Params, headers: IdempotencyHeaderSchema },
  responses: {
    200: json(ReplaySchema, "What was queued again"),
    ...errorResponses(403, 404, 422),
  },
});

export function registerRelayDeliveryRoutes(app: OpenAPIHono<ApiEnv>) {
  app.openapi(list, (c) =>
    query(c, async (ctx) => {
      const { projectId, kind } = c.req.valid("param");
      const q = c.req.valid("query");
      const result = await listProjectDeliveries(
        ctx,
        projectId,
        kind,
        { status: q.status },
        { limit: q.limit, startingAfter: q.starting_after },
      );
      return c.json(page({ data: result.data.map(deliveryJson), hasMore: result.hasMore }), 200);
    }),
  );

  app.openapi(replay, (c) =>
    mutation(c, async (ctx) => {
      const { projectId, kind } = c.req.valid("param");
      const replayed = await replayDeadLetters(ctx, projectId, kind, c.env.RELAY_QUEUE);
      return c.json({ object: "relay_replay" as const, ...replayed }, 200);
    }),
  );
}
