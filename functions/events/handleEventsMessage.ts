import { type Db, isDataError } from "../../shared/db";
import type { Logger } from "../../shared/logger";
import type { EventsMessage } from "../../shared/schemas/queue";
import { checkEventsMessage } from "../../shared/schemas/shapeCheck";
import { deadLetterEnvelope } from "../deadLetters/fromQueue";
import type { QueueDecision, QueuedMessage } from "../deadLetters/receive";
import { enabledRelayTargets, type RelayQueue, type RelayTarget } from "../relay/enqueueRelays";
import { relayInsertedEvents } from "../relay/relayInserted";
import { PERSIST_MAX_EVENTS_PER_STATEMENT, type PersistResult, persistMessages } from "./persistEvents";
import { persistIsolating, type Refused } from "./persistIsolating";
import { retryDelaySeconds } from "./retryDelay";

/** The part of the dead-letter queue's binding the consumer uses. */
export interface DeadLetterQueue {
  send(body: unknown, options?: { contentType?: "json" }): Promise<unknown>;
}

export interface EventsMessageDeps {
  db: Db;
  relayQueue: RelayQueue;
  deadLetterQueue: DeadLetterQueue;
  log: Logger;
  retryBaseSeconds: number;
  retryMaxSeconds: number;
}

interface Valid {
  index: number;
  message: QueuedMessage;
  body: EventsMessage;
}

type Persisted = PersistResult & { refused: Refused[] };

/**
 * The consumer's decision for each message of a queue batch of the "events" queue, as a plain function (the
 * Worker only maps it to ack/retry). Every message is decided on its own:
 *  - malformed (not a message of this version and shape): put on the dead-letter queue at once; retrying
 *    cannot fix it;
 *  - unknown project (or one from another org): dropped with a logged reason;
 *  - events the database refuses as data (persistIsolating): those go to the dead-letter queue with the
 *    SQLSTATE, the rest are stored;
 *  - any other database error: retried with exponential backoff (wrangler.toml: about two hours of attempts
 *    before Cloudflare moves it to the dead-letter queue);
 *  - stored: the new events are queued for the project's relays, then acked. Redelivery is harmless:
 *    persistEvents ignores events it already has (and so they are not relayed again).
 * The messages of one project are stored together, in one statement per up to 1,500 events (the cost per
 * statement, not per row, dominated). When that statement is refused as data, each message is stored on
 * its own with the poison-event isolation, so one bad event still costs only itself.
 */
export async function handleEventsMessages(
  deps: EventsMessageDeps,
  messages: QueuedMessage[],
): Promise<QueueDecision[]> {
  const decisions: QueueDecision[] = new Array(messages.length);
  const groups = new Map<string, Valid[]>();
  const malformed: Promise<void>[] = [];
  messages.forEach((message, index) => {
    const checked = checkEventsMessage(message.body);
    if (!checked.ok) {
      malformed.push(
        deadLetterMalformed(deps, message, checked.issues).then((d) => {
          decisions[index] = d;
        }),
      );
      return;
    }
    const key = `${checked.message.orgId} ${checked.message.projectId}`;
    const group = groups.get(key) ?? [];
    group.push({ index, message, body: checked.message });
    groups.set(key, group);
  });
  await Promise.all([
    ...malformed,
    ...[...groups.values()].map(async (group) => {
      const decided = await handleProjectMessages(deps, group);
      group.forEach((v, k) => {
        decisions[v.index] = decided[k] as QueueDecision;
      });
    }),
  ]);
  return decisions;
}

/** One message on its own (tests, and callers outside a queue batch). */
export async function handleEventsMessage(
  deps: EventsMessageDeps,
  message: QueuedMessage,
): Promise<QueueDecision> {
  const [decision] = await handleEventsMessages(deps, [message]);
  return decision as QueueDecision;
}

function retryOf(deps: EventsMessageDeps, message: QueuedMessage, error: unknown): QueueDecision {
  return {
    kind: "retry",
    delaySeconds: retryDelaySeconds(message.attempts, deps.retryBaseSeconds, deps.retryMaxSeconds),
    error,
  };
}

async function deadLetterMalformed(
  deps: EventsMessageDeps,
  message: QueuedMessage,
  issues: string[],
): Promise<QueueDecision> {
  deps.log.error("malformed message sent to the dead-letter queue", {
    messageId: message.id,
    issues: issues.slice(0, 5),
  });
  try {
    await deps.deadLetterQueue.send(deadLetterEnvelope("malformed", message.body), { contentType: "json" });
    return { kind: "ack", outcome: "dead-lettered (malformed)" };
  } catch (error) {
    return retryOf(deps, message, error);
  }
}

/**
 * Whole messages, at most PERSIST_MAX_EVENTS_PER_STATEMENT events per chunk (a bigger message alone), and
 * the chunks as even as whole messages allow: they run concurrently, so the batch waits for the largest
 * (100 messages of 50 events: four chunks of 1,250, not 1,500 + 1,500 + 1,500 + 500).
 */
function statementChunks(group: Valid[]): Valid[][] {
  const total = group.reduce((n, v) => n + v.body.events.length, 0);
  const target = Math.ceil(total / Math.ceil(total / PERSIST_MAX_EVENTS_PER_STATEMENT));
  const chunks: Valid[][] = [];
  let current: Valid[] = [];
  let events = 0;
  for (const v of group) {
    if (
      current.length > 0 &&
      (events >= target || events + v.body.events.length > PERSIST_MAX_EVENTS_PER_STATEMENT)
    ) {
      chunks.push(current);
      current = [];
      events = 0;
    }
    current.push(v);
    events += v.body.events.length;
  }
  if (current.length > 0) chunks.push(current);
  return chunks;
}

/**
 * Messages of one org and project: the destinations read once (alongside the statements), the events
 * stored in statements of whole messages, then each message finished (dead letters, relays) alone.
 * Statements run concurrently, as the messages did before they were grouped (sdk_users rows are locked in
 * user order, so two statements of one project wait for each other, never deadlock).
 */
async function handleProjectMessages(deps: EventsMessageDeps, group: Valid[]): Promise<QueueDecision[]> {
  const first = group[0] as Valid;
  // Read alongside the statements, not before them: the relays need the destinations only once the
  // events are stored, and a read first added its connection and round trips to every batch. A failed
  // read retries the messages even when their events were stored meanwhile: the redelivery (attempts > 1)
  // relays every kept event, stored before or not (relayInsertedEvents), so no conversion is lost.
  const targets: Promise<RelayTarget[] | { failed: unknown }> = enabledRelayTargets(
    deps.db,
    first.body.orgId,
    first.body.projectId,
  ).catch((error: unknown) => ({ failed: error }));
  const decided = await Promise.all(
    statementChunks(group).map(async (chunk) => {
      let persisted: Persisted[];
      try {
        persisted = await persistChunk(deps.db, chunk);
      } catch (error) {
        return chunk.map((v) => retryOf(deps, v.message, error));
      }
      const read = await targets;
      if (!Array.isArray(read)) return chunk.map((v) => retryOf(deps, v.message, read.failed));
      return Promise.all(chunk.map((v, k) => finish(deps, v, read, persisted[k] as Persisted)));
    }),
  );
  return decided.flat();
}

/** One statement for the chunk; when it is refused as data, each message alone, down to the bad events. */
async function persistChunk(db: Db, chunk: Valid[]): Promise<Persisted[]> {
  if (chunk.length === 1) return [await persistIsolating(db, (chunk[0] as Valid).body)];
  try {
    return (
      await persistMessages(
        db,
        chunk.map((v) => v.body),
      )
    ).map((r) => ({ ...r, refused: [] }));
  } catch (error) {
    if (!isDataError(error)) throw error;
    const persisted: Persisted[] = [];
    for (const v of chunk) persisted.push(await persistIsolating(db, v.body));
    return persisted;
  }
}

async function finish(
  deps: EventsMessageDeps,
  { message, body }: Valid,
  targets: RelayTarget[],
  result: Persisted,
): Promise<QueueDecision> {
  const { log } = deps;
  const { orgId, projectId } = body;
  try {
    if (!result.projectFound) {
      log.warn("message dropped: unknown project", { messageId: message.id, orgId, projectId });
      return { kind: "ack", outcome: "dropped (unknown project)" };
    }
    for (const refused of result.refused) {
      // Only the refused events; the rest of the message is stored. The SQLSTATE, never the error text.
      await deps.deadLetterQueue.send(
        deadLetterEnvelope("data_error", { ...body, events: refused.events }, refused.code),
        { contentType: "json" },
      );
      log.error("events refused by the database, dead-lettered", {
        messageId: message.id,
        projectId,
        code: refused.code,
        events: refused.events.length,
      });
    }
    const { received, inserted } = result;
    log.info("events persisted", { messageId: message.id, projectId, received, inserted });
    // Persistence never waits on a platform: this only enqueues (see relayInserted for retries).
    const relayed = await relayInsertedEvents(deps.relayQueue, targets, body, result, message.attempts);
    if (relayed.messages > 0) log.info("events queued for relay", { messageId: message.id, ...relayed });
    return { kind: "ack", outcome: "stored" };
  } catch (error) {
    return retryOf(deps, message, error);
  }
}
