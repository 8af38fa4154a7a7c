import { sql } from "kysely";
import { executeDeletions, MAX_ROWS_PER_RUN } from "../../functions/deletionRequests/executeDeletions";
import { createDeletionRequest } from "../../functions/deletionRequests/store";
import { resolveSubject } from "../../functions/userData/subject";
import { maintenanceRoleUrl, roleUrl } from "../../scripts/local/migrate";
import { createNodeDb } from "../../scripts/local/node-db";
import { type Db, withTenant } from "../../shared/db";
import { createTenant, type TestTenant } from "../support/tenant";
import { type IngestWindow, ingestWhile } from "./ingestWhile";
import type { Resources } from "./resources";

// (g) Data-subject deletion: erasing one user with `userEvents` events from a table of `tableRows` with
// the Cron job (executeDeletions: batches of DELETE_BATCH_ROWS, each its own short transaction, counts on
// the receipt) against one plain `DELETE … WHERE project_id = $1 AND user_id = $2` of another user with as
// many rows, in the same run: two quiet rounds alternating sides give the ratio; then one more user per
// side while one connection keeps persisting 150-event messages through persistEvents (the consumer's
// path, which also checks for deletion requests), so the figures show what each does to concurrent
// ingest. Then the SLA: one user with `slaEvents` events erased by a single Cron run.

export interface DeleteUserOptions {
  ownerUrl: string;
  tableRows: number;
  userEvents: number;
  slaEvents: number;
}

interface Side {
  rows: number;
  elapsedMs: number;
  rowsPerSecond: number;
  ingest: IngestWindow;
}

export interface DeleteUserFigures {
  /** Quiet database: the ratio. */
  executor: Side;
  plain: Side;
  /** One more user per side while one connection keeps ingesting. */
  executorLive: Side;
  plainLive: Side;
  idleIngest: IngestWindow;
  /** executor rows/s divided by plain rows/s. */
  ratio: number;
  sla: { events: number; elapsedMs: number; completedInOneRun: boolean };
}

export const DELETE_USER_TARGET_RATIO = 0.5;
/** The Cron Trigger's period (workers/cron/wrangler.toml: every 5 minutes). */
const CRON_CYCLE_MS = 300_000;
const TARGETS = ["exec-0", "plain-0", "exec-1", "plain-1", "exec-live", "plain-live"] as const;

/** The table: background users plus the target users, their events interleaved in time among the rest. */
async function load(db: Db, t: TestTenant, options: DeleteUserOptions, progress: (m: string) => void) {
  const targets = TARGETS.length * options.userEvents + options.slaEvents;
  const background = Math.max(0, options.tableRows - targets);
  const chunk = 250_000;
  for (let start = 0; start < background; start += chunk) {
    const end = Math.min(background, start + chunk);
    await sql`
      insert into sdk_events (org_id, project_id, event_id, name, user_id, ts, received_at, country, properties)
      select ${t.orgId}, ${t.projectId}, 'bg-' || g, 'view', 'user-' || (g % 50000),
             timestamptz '2026-01-01' + (g % 8640000) * interval '1 second', timestamptz '2026-06-01', 'DE',
             '{"plan":"pro"}'::jsonb
      from generate_series(${start + 1}::int, ${end}::int) g
    `.execute(db);
    progress(
      `(g) loaded ${end.toLocaleString("en-US")} of ${background.toLocaleString("en-US")} background events`,
    );
  }
  const users = [
    ...TARGETS.map((u) => [u, options.userEvents] as const),
    ["sla", options.slaEvents] as const,
  ];
  for (const [user, n] of users) {
    await sql`
      insert into sdk_events (org_id, project_id, event_id, name, user_id, ts, received_at, country, properties)
      select ${t.orgId}, ${t.projectId}, ${user} || '-' || g, 'purchase', ${user},
             timestamptz '2026-01-01' + (g * 863) % 8640000 * interval '1 second', timestamptz '2026-06-01', 'DE',
             '{"plan":"pro"}'::jsonb
      from generate_series(1, ${n}::int) g
    `.execute(db);
    await sql`
      insert into sdk_users (org_id, project_id, user_id, first_seen_at, last_seen_at)
      values (${t.orgId}, ${t.projectId}, ${user}, timestamptz '2026-01-01', timestamptz '2026-04-01')
    `.execute(db);
  }
  // A freshly loaded table draws autovacuum (insert threshold) in the middle of the rounds: do it now.
  await sql`vacuum analyze sdk_events`.execute(db);
  await sql`vacuum analyze sdk_users`.execute(db);
}

/** Times `work`; with `appDb`, while one connection keeps ingesting (else on a quiet database). */
async function measure(
  appDb: Db | null,
  t: TestTenant,
  work: () => Promise<number>,
): Promise<{ rows: number; elapsedMs: number; ingest: IngestWindow }> {
  if (!appDb) {
    const started = performance.now();
    const rows = await work();
    return { rows, elapsedMs: performance.now() - started, ingest: { eventsPerSecond: 0, maxMessageMs: 0 } };
  }
  let finish: () => void = () => {};
  const done = new Promise<void>((resolve) => {
    finish = resolve;
  });
  const ingest = ingestWhile(appDb, t, done);
  await new Promise((resolve) => setTimeout(resolve, 200)); // ingest is flowing before the work starts
  const started = performance.now();
  const rows = await work();
  const elapsedMs = performance.now() - started;
  finish();
  return { rows, elapsedMs, ingest: await ingest };
}

async function openRequest(ownerDb: Db, t: TestTenant, userId: string, now: Date): Promise<string> {
  const subject = await resolveSubject({ userId });
  if (!subject) throw new Error("no subject");
  const { request } = await withTenant(ownerDb, t.orgId, (tx) =>
    createDeletionRequest(tx, {
      orgId: t.orgId,
      projectId: t.projectId,
      subject,
      suppress: false,
      now,
      requestId: "bench",
      requestedBy: "bench",
    }),
  );
  return request.id;
}

async function receipt(ownerDb: Db, id: string) {
  return ownerDb
    .selectFrom("deletion_requests")
    .select(["status", "deleted_events", "deleted_users"])
    .where("id", "=", id)
    .executeTakeFirstOrThrow();
}

export async function benchDeleteUser(
  resources: Resources,
  options: DeleteUserOptions,
  progress: (m: string) => void,
): Promise<DeleteUserFigures> {
  const ownerDb = createNodeDb(options.ownerUrl, 2);
  const closeOwner = resources.add("dsar owner pool", () => ownerDb.destroy());
  const appDb = createNodeDb(roleUrl(options.ownerUrl, "layers_consumer"), 1);
  const closeApp = resources.add("dsar app pool", () => appDb.destroy());
  const maintenance = createNodeDb(maintenanceRoleUrl(options.ownerUrl), 1);
  const closeMaintenance = resources.add("dsar maintenance pool", () => maintenance.destroy());
  try {
    // Both sides use these pools: connect them first so neither pays for connection setup.
    await sql`select 1`.execute(maintenance);
    await sql`select 1`.execute(appDb);
    const t = await createTenant(ownerDb);
    await load(ownerDb, t, options, progress);
    const now = new Date();

    const sides = {
      executor: [] as Awaited<ReturnType<typeof measure>>[],
      plain: [] as Awaited<ReturnType<typeof measure>>[],
      executorLive: [] as Awaited<ReturnType<typeof measure>>[],
      plainLive: [] as Awaited<ReturnType<typeof measure>>[],
    };
    // Two quiet rounds alternating sides (the ratio), then one round of each under concurrent ingest.
    const rounds: [string, boolean][] = [
      ["exec-0", false],
      ["plain-0", false],
      ["plain-1", false],
      ["exec-1", false],
      ["exec-live", true],
      ["plain-live", true],
    ];
    for (const [user, live] of rounds) {
      progress(`(g) deleting ${user} (${options.userEvents} events)${live ? " during ingest" : ""}`);
      const ingestDb = live ? appDb : null;
      if (user.startsWith("exec")) {
        const id = await openRequest(ownerDb, t, user, now);
        const m = await measure(ingestDb, t, async () => {
          await executeDeletions(maintenance, new Date(now.getTime() + 1_000));
          return Number((await receipt(ownerDb, id)).deleted_events);
        });
        const r = await receipt(ownerDb, id);
        if (r.status !== "completed" || Number(r.deleted_events) !== options.userEvents) {
          throw new Error(`dsar bench: executor receipt ${JSON.stringify(r)}`);
        }
        (live ? sides.executorLive : sides.executor).push(m);
      } else {
        const m = await measure(ingestDb, t, async () => {
          const { numAffectedRows } = await sql`
            delete from sdk_events where project_id = ${t.projectId} and user_id = ${user}
          `.execute(maintenance);
          await sql`delete from sdk_users where project_id = ${t.projectId} and user_id = ${user}`.execute(
            maintenance,
          );
          return Number(numAffectedRows ?? 0);
        });
        if (m.rows !== options.userEvents) throw new Error(`dsar bench: plain delete removed ${m.rows}`);
        (live ? sides.plainLive : sides.plain).push(m);
      }
    }

    // Ingest alone, measured after the rounds so it runs on caches as warm as theirs.
    const idleIngest = await ingestWhile(appDb, t, new Promise((resolve) => setTimeout(resolve, 2_000)));
    progress(`(g) SLA: one Cron run erasing a user with ${options.slaEvents} events`);
    const slaId = await openRequest(ownerDb, t, "sla", now);
    const slaStarted = performance.now();
    const run = await executeDeletions(maintenance, new Date(now.getTime() + 1_000));
    const slaMs = performance.now() - slaStarted;
    const slaReceipt = await receipt(ownerDb, slaId);

    const left = await sql<{ n: number }>`
      select count(*)::int as n from sdk_events
      where project_id = ${t.projectId} and user_id in ('exec-0', 'exec-1', 'plain-0', 'plain-1', 'exec-live',
        'plain-live', 'sla')
    `.execute(ownerDb);
    if (left.rows[0]?.n !== 0) throw new Error(`dsar bench: ${left.rows[0]?.n} target events left`);

    const combine = (ms: Awaited<ReturnType<typeof measure>>[]): Side => {
      const rows = ms.reduce((s, m) => s + m.rows, 0);
      const elapsedMs = ms.reduce((s, m) => s + m.elapsedMs, 0);
      return {
        rows,
        elapsedMs,
        rowsPerSecond: rows / (elapsedMs / 1_000),
        ingest: {
          eventsPerSecond: ms.reduce((s, m) => s + m.ingest.eventsPerSecond, 0) / ms.length,
          maxMessageMs: Math.max(...ms.map((m) => m.ingest.maxMessageMs)),
        },
      };
    };
    const executor = combine(sides.executor);
    const plain = combine(sides.plain);
    return {
      executor,
      plain,
      executorLive: combine(sides.executorLive),
      plainLive: combine(sides.plainLive),
      idleIngest,
      ratio: executor.rowsPerSecond / plain.rowsPerSecond,
      sla: {
        events: Number(slaReceipt.deleted_events),
        elapsedMs: slaMs,
        completedInOneRun: slaReceipt.status === "completed" && run.more === false,
      },
    };
  } finally {
    await closeMaintenance();
    await closeApp();
    await closeOwner();
  }
}

export function deleteUserLines(f: DeleteUserFigures, o: DeleteUserOptions): string {
  const int = (n: number) => Math.round(n).toLocaleString("en-US");
  const pass = f.ratio >= DELETE_USER_TARGET_RATIO;
  const slaPass = f.sla.completedInOneRun && f.sla.elapsedMs < CRON_CYCLE_MS;
  return [
    `(g) dsar    delete one user (${int(o.userEvents)} events) from ${int(o.tableRows)} events, 2 quiet rounds per side: ` +
      `executeDeletions ${int(f.executor.rowsPerSecond)} rows/s (${(f.executor.elapsedMs / 2).toFixed(0)} ms per user) | ` +
      `plain DELETE ${int(f.plain.rowsPerSecond)} rows/s (${(f.plain.elapsedMs / 2).toFixed(0)} ms) | ` +
      `ratio ${f.ratio.toFixed(2)} (target ≥ ${DELETE_USER_TARGET_RATIO}) ${pass ? "PASS" : "MISS"}`,
    `    during concurrent ingest (persistEvents, 150-event messages, 1 connection): executeDeletions ` +
      `${int(f.executorLive.rowsPerSecond)} rows/s | plain DELETE ${int(f.plainLive.rowsPerSecond)} rows/s; ingest ` +
      `idle ${int(f.idleIngest.eventsPerSecond)} ev/s (slowest message ${f.idleIngest.maxMessageMs.toFixed(0)} ms) | ` +
      `during executor ${int(f.executorLive.ingest.eventsPerSecond)} ev/s (${f.executorLive.ingest.maxMessageMs.toFixed(0)} ms) | ` +
      `during plain DELETE ${int(f.plainLive.ingest.eventsPerSecond)} ev/s (${f.plainLive.ingest.maxMessageMs.toFixed(0)} ms)`,
    `    SLA: a user with ${int(f.sla.events)} events erased in one Cron run in ${(f.sla.elapsedMs / 1_000).toFixed(1)} s ` +
      `(budget ${int(MAX_ROWS_PER_RUN)} rows per run, cycle ${CRON_CYCLE_MS / 1_000} s) ${slaPass ? "PASS" : "MISS"}`,
  ].join("\n");
}
