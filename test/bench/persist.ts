import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { sql } from "kysely";
import pg from "pg";
import { from as copyFrom } from "pg-copy-streams";
import { handleEventsMessages } from "../../functions/events/handleEventsMessage";
import { persistEvents } from "../../functions/events/persistEvents";
import { roleUrl } from "../../scripts/local/migrate";
import { createNodeDb } from "../../scripts/local/node-db";
import type { Db } from "../../shared/db";
import { createLogger } from "../../shared/logger";
import type { EventsMessage, QueuedEvent } from "../../shared/schemas/queue";
import { createTenant } from "../support/tenant";
import { queuedMessages } from "./events";
import type { Resources } from "./resources";

export interface PersistOptions {
  ownerUrl: string;
  /** Rows per side. */
  rows: number;
  eventsPerMessage: number;
  concurrency: number;
  /** The work is split in rounds that rotate sides, so drift (noise, table growth) hits all alike. */
  rounds: number;
  /** Messages per consumer invocation (the consumer's max_batch_size). */
  queueBatch: number;
}

interface Side {
  rows: number;
  elapsedMs: number;
  rowsPerSecond: number;
}

export interface PersistFigures {
  /** The consumer's path: handleEventsMessages on queue batches (a project's messages in one statement). */
  persist: Side;
  /** Informational: persistEvents once per message, as the consumer stored before grouping. */
  perMessage: Side;
  copy: Side;
  ratio: number;
  /** What the persist side also maintained, from the database after the run. */
  users: number;
  dailyCountRows: number;
}

const COLUMNS = [
  "org_id",
  "project_id",
  "event_id",
  "name",
  "user_id",
  "ts",
  "received_at",
  "app_id",
  "os",
  "os_version",
  "device_model",
  "browser",
  "country",
  "region",
  "email_sha256",
  "phone_sha256",
  "properties",
];

/**
 * (b) Events per second through the consumer's persistence (handleEventsMessages on queue batches of
 * `queueBatch` messages: shape check, destinations lookup, one statement per project and ≤ 1,500 events
 * writing sdk_events plus event_daily_counts and sdk_users, in a tenant transaction as the app role)
 * against COPY of the same rows into sdk_events alone, the bulk-load ceiling. A third side, informational,
 * stores one message per statement (persistEvents), the consumer's way before grouping. Each side writes
 * to its own fresh project, so all insert the same number of new rows into the same table, with the same
 * number of connections.
 */
export async function benchPersist(resources: Resources, options: PersistOptions): Promise<PersistFigures> {
  const ownerDb = createNodeDb(options.ownerUrl, 2);
  const closeOwnerDb = resources.add("owner db pool", () => ownerDb.destroy());
  const persistTenant = await createTenant(ownerDb);
  const singleTenant = await createTenant(ownerDb);
  const copyTenant = await createTenant(ownerDb);

  // Same event ids on every side; the primary key is (project_id, event_id), so every side inserts all.
  const persistMessages = await queuedMessages(
    persistTenant,
    "persist",
    options.rows,
    options.eventsPerMessage,
  );
  const moved = (t: { orgId: string; projectId: string }) =>
    persistMessages.map((m) => ({ ...m, orgId: t.orgId, projectId: t.projectId }));
  const singleMessages = moved(singleTenant);
  const copyMessages = moved(copyTenant);

  // The consumer connects as the app role; COPY FROM needs a role that bypasses RLS (the owner, superuser).
  const appDb = createNodeDb(roleUrl(options.ownerUrl, "layers_consumer"), options.concurrency);
  const closeAppDb = resources.add("app db pool", () => appDb.destroy());
  const copyPool = new pg.Pool({ connectionString: options.ownerUrl, max: options.concurrency });
  copyPool.on("error", () => {}); // an idle connection dropped: the next connect() reports it
  const closeCopyPool = resources.add("copy pool", () => copyPool.end());
  await openConnections(appDb, copyPool, options.concurrency);

  const ms = { persist: 0, single: 0, copy: 0 };
  const perRound = Math.ceil(persistMessages.length / options.rounds);
  for (let round = 0; round < options.rounds; round++) {
    const slice = (messages: EventsMessage[]) => messages.slice(round * perRound, (round + 1) * perRound);
    const runs = {
      persist: () => consumeAll(appDb, slice(persistMessages), options.concurrency, options.queueBatch),
      single: () => persistAll(appDb, slice(singleMessages), options.concurrency),
      copy: () => copyAll(copyPool, slice(copyMessages), options.concurrency),
    };
    const order = (["copy", "persist", "single"] as const).map((_, i, all) => all[(i + round) % all.length]!);
    for (const side of order) ms[side] += await timed(runs[side]);
  }

  const counts = await verify(
    ownerDb,
    [persistTenant.projectId, singleTenant.projectId],
    copyTenant.projectId,
    options.rows,
  );
  await closeCopyPool();
  await closeAppDb();
  await closeOwnerDb();
  const side = (elapsedMs: number) => ({
    rows: options.rows,
    elapsedMs,
    rowsPerSecond: options.rows / (elapsedMs / 1_000),
  });
  const persist = side(ms.persist);
  const copy = side(ms.copy);
  return {
    persist,
    perMessage: side(ms.single),
    copy,
    ratio: persist.rowsPerSecond / copy.rowsPerSecond,
    ...counts,
  };
}

async function timed(fn: () => Promise<void>): Promise<number> {
  const started = performance.now();
  await fn();
  return performance.now() - started;
}

/** Connects every pooled connection before timing, so neither side pays for connection setup. */
async function openConnections(appDb: Db, copyPool: pg.Pool, count: number): Promise<void> {
  await Promise.all(Array.from({ length: count }, () => sql`select pg_sleep(0.05)`.execute(appDb)));
  const clients = await Promise.all(Array.from({ length: count }, () => copyPool.connect()));
  for (const client of clients) client.release();
}

/** `concurrency` consumers taking the next message as they finish, like the consumer's Promise.all. */
async function persistAll(db: Db, messages: EventsMessage[], concurrency: number): Promise<void> {
  let next = 0;
  const worker = async () => {
    for (let message = messages[next++]; message; message = messages[next++]) {
      const result = await persistEvents(db, message);
      if (!result.projectFound || result.inserted !== message.events.length) {
        throw new Error(`persistEvents stored ${result.inserted} of ${message.events.length} events`);
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
}

const silent = createLogger({}, () => {});
const nowhere = { send: async () => undefined, sendBatch: async () => undefined };

/**
 * `concurrency` consumer invocations at a time, each taking the next queue batch of `queueBatch` messages
 * and deciding them with the consumer's own function (the project has no destinations: nothing to relay).
 */
async function consumeAll(
  db: Db,
  messages: EventsMessage[],
  concurrency: number,
  queueBatch: number,
): Promise<void> {
  const deps = {
    db,
    relayQueue: nowhere,
    deadLetterQueue: nowhere,
    log: silent,
    retryBaseSeconds: 1,
    retryMaxSeconds: 1,
  };
  let next = 0;
  const worker = async () => {
    for (;;) {
      const batch = messages.slice(next, next + queueBatch);
      next += queueBatch;
      if (batch.length === 0) return;
      const decisions = await handleEventsMessages(
        deps,
        batch.map((body, i) => ({ id: `m${next + i}`, body, attempts: 1 })),
      );
      const wrong = decisions.find((d) => d.kind !== "ack" || d.outcome !== "stored");
      if (wrong) throw new Error(`consumer decided ${JSON.stringify(wrong)}`);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
}

/** Splits the messages into `concurrency` contiguous shares and streams each through one COPY. */
async function copyAll(pool: pg.Pool, messages: EventsMessage[], concurrency: number): Promise<void> {
  const share = Math.ceil(messages.length / concurrency);
  await Promise.all(
    Array.from({ length: concurrency }, async (_, i) => {
      const mine = messages.slice(i * share, (i + 1) * share);
      if (mine.length === 0) return;
      const client = await pool.connect();
      // A connection the server drops mid-COPY reports on the client, not the stream: fail this COPY
      // with it instead of crashing on an unhandled 'error' event.
      let connectionError: Error | undefined;
      const onError = (error: Error) => {
        connectionError ??= error;
      };
      client.on("error", onError);
      try {
        const copy = client.query(copyFrom(`copy sdk_events (${COLUMNS.join(", ")}) from stdin`));
        await pipeline(Readable.from(copyText(mine)), copy);
        if (connectionError) throw connectionError;
      } finally {
        client.removeListener("error", onError);
        client.release(connectionError);
      }
    }),
  );
}

/** COPY text format, one chunk per message; building it is part of the COPY side's cost, as JSON is of persist's. */
function* copyText(messages: EventsMessage[]): Generator<string> {
  for (const m of messages) {
    let chunk = "";
    for (const e of m.events) chunk += `${copyRow(m, e)}\n`;
    yield chunk;
  }
}

function copyRow(m: EventsMessage, e: QueuedEvent): string {
  return [
    m.orgId,
    m.projectId,
    e.eventId,
    e.name,
    e.userId,
    e.timestamp,
    m.receivedAt,
    e.appId,
    e.os,
    e.osVersion,
    e.deviceModel,
    e.browser,
    e.country,
    e.region,
    e.emailSha256,
    e.phoneSha256,
    JSON.stringify(e.properties),
  ]
    .map(copyField)
    .join("\t");
}

function copyField(value: string | null): string {
  if (value === null) return "\\N";
  return value.replace(
    /[\\\n\r\t]/g,
    (c) => ({ "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t" })[c] ?? c,
  );
}

/** Both sides really stored every row, and persist fed its side tables: else the figures mean nothing. */
async function verify(
  db: Db,
  persistProjects: string[],
  copyProject: string,
  rows: number,
): Promise<{ users: number; dailyCountRows: number }> {
  let figures = { users: 0, dailyCountRows: 0 };
  for (const persistProject of persistProjects)
    figures = await verifyProject(db, persistProject, copyProject, rows);
  return figures;
}

async function verifyProject(
  db: Db,
  persistProject: string,
  copyProject: string,
  rows: number,
): Promise<{ users: number; dailyCountRows: number }> {
  const { rows: result } = await sql<{
    persisted: number;
    copied: number;
    counted: number;
    users: number;
    daily: number;
  }>`
    select
      (select count(*) from sdk_events where project_id = ${persistProject})::int as persisted,
      (select count(*) from sdk_events where project_id = ${copyProject})::int as copied,
      (select coalesce(sum(count), 0) from event_daily_counts where project_id = ${persistProject})::int as counted,
      (select count(*) from event_daily_counts where project_id = ${persistProject})::int as daily,
      (select count(*) from sdk_users where project_id = ${persistProject})::int as users
  `.execute(db);
  const r = result[0];
  if (!r || r.persisted !== rows || r.copied !== rows || r.counted !== rows || r.users === 0) {
    throw new Error(
      `persist bench: unexpected table contents ${JSON.stringify(r)} (expected ${rows} rows per side)`,
    );
  }
  return { users: r.users, dailyCountRows: r.daily };
}
