import { createRoute, type OpenAPIHono, z } from "@hono/zod-openapi";
import { type Delivery, listDeliveries, takeDeadLettersForReplay } from "../../../functions/relay/deliveries";
import { enqueueRelayMessages } from "../../../functions/relay/enqueueRelays";
import { DESTINATION_KINDS } from "../../../shared/destinations";
import { ApiError } from "../../../shared/errors";
import type { RelayMessage } from "../../../shared/schemas/relay";
import { requires } from "../access";
import type { ApiEnv } from "../context";
import { audit, mutation, query } from "../handlers";
import {
  dateTime,
  errorResponses,
  IdempotencyHeaderSchema,
  json,
  listOf,
  PageQuerySchema,
  page,
} from "../schemas";
import { visibleProject } from "./projects";

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

/** Batches queued per replay call: one sendBatch's worth of messages. */
const REPLAY_LIMIT = 100;

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

const list = createRoute({
  ...requires("read_only"),
  method: "get",
  path: "/v1/projects/{projectId}/destinations/{kind}/deliveries",
  tags: ["Destinations"],
  summary: "The relay's delivery log for a destination, newest first (30 days)",
  request: { params: Params, query: DeliveryQuery },
  responses: {
    200: json(listOf(DeliverySchema, "RelayDeliveryList"), "A page of deliveries"),
    ...errorResponses(400, 403, 404),
  },
});

const replay = createRoute({
  ...requires("admin"),
  method: "post",
  path: "/v1/projects/{projectId}/destinations/{kind}/dead-letters/replay",
  tags: ["Destinations"],
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
    query(c, async (s) => {
      const { projectId, kind } = c.req.valid("param");
      const project = await visibleProject(s, projectId);
      const q = c.req.valid("query");
      const result = await listDeliveries(
        s.tx,
        project.id,
        kind,
        { status: q.status },
        { limit: q.limit, startingAfter: q.starting_after },
      );
      return c.json(page({ data: result.data.map(deliveryJson), hasMore: result.hasMore }), 200);
    }),
  );

  app.openapi(replay, (c) =>
    mutation(c, async (s) => {
      const { projectId, kind } = c.req.valid("param");
      const project = await visibleProject(s, projectId);
      if (kind === "apple-search-ads") {
        throw new ApiError(
          "replay_unsupported",
          "Apple Search Ads dead letters cannot be replayed: AdServices tokens are never stored.",
        );
      }
      const queue = c.env.RELAY_QUEUE;
      if (!queue) throw new ApiError("queue_unavailable", "The relay queue is not configured.");
      const taken = await takeDeadLettersForReplay(s.tx, project.id, kind, REPLAY_LIMIT, s.now);
      const messages: RelayMessage[] = taken.batches.map((b) => ({
        v: 1,
        batchId: b.batchId,
        orgId: s.orgId,
        projectId: project.id,
        destination: kind,
        enqueuedAt: s.now.toISOString(),
        events: b.events,
      }));
      // Inside the transaction: if the queue refuses, the dead letters stay pending (nothing marked replayed).
      try {
        await enqueueRelayMessages(queue, messages);
      } catch {
        throw new ApiError("queue_unavailable", "The relay queue did not accept the batches; try again.");
      }
      const body = { object: "relay_replay" as const, replayed: messages.length, hasMore: taken.hasMore };
      await audit(
        s,
        "destination.dead_letters_replayed",
        { type: "destination", id: `${project.id}/${kind}` },
        {
          after: { replayed: messages.length, batchIds: messages.map((m) => m.batchId) },
        },
      );
      return c.json(body, 200);
    }),
  );
}
