import type { DestinationKind } from "../../shared/destinations";
import { ApiError } from "../../shared/errors";
import type { RelayMessage } from "../../shared/schemas/relay";
import { audit } from "../audit/writeAudit";
import { transactionOf, type VerbContext } from "../context";
import { visibleProject } from "../projects/verbs";
import {
  type Delivery,
  type DeliveryStatus,
  listDeliveries,
  takeDeadLettersForReplay,
} from "../relay/deliveries";
import { enqueueRelayMessages, type RelayQueue } from "../relay/enqueueRelays";

/** Batches queued per replay call: one sendBatch's worth of messages. */
const REPLAY_LIMIT = 100;

/** A destination's delivery log, newest first. */
export async function listProjectDeliveries(
  ctx: VerbContext,
  projectId: string,
  kind: DestinationKind,
  filter: { status?: DeliveryStatus | undefined },
  page: { limit: number; startingAfter?: string | undefined },
): Promise<{ data: Delivery[]; hasMore: boolean }> {
  const project = await visibleProject(ctx, projectId);
  return listDeliveries(ctx.db, project.id, kind, filter, page);
}

/**
 * Queues up to REPLAY_LIMIT dead-lettered batches again, oldest first. Runs in the caller's transaction:
 * the batches are marked replayed and queued together, and if the queue refuses them the transaction rolls
 * back, so they stay pending (nothing marked replayed).
 */
export async function replayDeadLetters(
  ctx: VerbContext,
  projectId: string,
  kind: DestinationKind,
  queue: RelayQueue | undefined,
): Promise<{ replayed: number; hasMore: boolean }> {
  const project = await visibleProject(ctx, projectId);
  if (kind === "apple-search-ads") {
    throw new ApiError(
      "replay_unsupported",
      "Apple Search Ads dead letters cannot be replayed: AdServices tokens are never stored.",
    );
  }
  if (!queue) throw new ApiError("queue_unavailable", "The relay queue is not configured.");
  const taken = await takeDeadLettersForReplay(transactionOf(ctx), project.id, kind, REPLAY_LIMIT, ctx.now);
  const messages: RelayMessage[] = taken.batches.map((b) => ({
    v: 1,
    batchId: b.batchId,
    orgId: ctx.orgId,
    projectId: project.id,
    destination: kind,
    enqueuedAt: ctx.now.toISOString(),
    events: b.events,
  }));
  try {
    await enqueueRelayMessages(queue, messages);
  } catch {
    throw new ApiError("queue_unavailable", "The relay queue did not accept the batches; try again.");
  }
  await audit(
    ctx,
    "destination.dead_letters_replayed",
    { type: "destination", id: `${project.id}/${kind}` },
    { after: { replayed: messages.length, batchIds: messages.map((m) => m.batchId) } },
  );
  return { replayed: messages.length, hasMore: taken.hasMore };
}
