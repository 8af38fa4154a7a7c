import { sql } from "kysely";
import { DEFAULT_LIMITS } from "../../functions/retention/policy";
import { purgeExpired } from "../../functions/retention/purgeExpired";
import { maintenanceRoleUrl } from "../../scripts/local/migrate";
import { createNodeDb } from "../../scripts/local/node-db";
import type { Db } from "../../shared/db";
import { createTenant } from "../support/tenant";
import type { Resources } from "./resources";

// (e) Retention purge: deleting `rows` expired events with purgeExpired (chunks of DEFAULT_LIMITS.chunkSize
// selected by sdk_events_project_ts and deleted by primary key, in as many budgeted runs as it takes)
// against one plain `DELETE … WHERE project_id = $1 AND ts < $2` of as many rows, in the same run. Both
// sides run while two connections keep inserting new events into another project, so the figures also
// show what each does to concurrent ingest.

export interface PurgeOptions {
  ownerUrl: string;
  /** Expired rows per side (plus 10% live rows in each project, which must survive). */
  rows: number;
}

interface IngestWindow {
  rowsPerSecond: number;
  maxBatchMs: number;
}

export interface PurgeFigures {
  purge: { rows: number; elapsedMs: number; rowsPerSecond: number; runs: number; ingest: IngestWindow };
  plain: { rows: number; elapsedMs: number; rowsPerSecond: number; ingest: IngestWindow };
  idleIngest: IngestWindow;
  /** purge rows/s divided by plain rows/s. */
  ratio: number;
  plan: string;
}

const NOW = new Date("2031-06-15T12:00:00Z");
const INGEST_BATCH = 100;
/** Batch numbers across every ingest window, so event ids never repeat. */
let sequence = 0;

async function load(db: Db, t: { orgId: string; projectId: string }, expired: number): Promise<void> {
  // Expired rows spread over 100 days past the 400-day window, live rows over the last 100 days.
  const live = Math.ceil(expired / 10);
  await sql`
    insert into sdk_events (org_id, project_id, event_id, name, user_id, ts, received_at, properties)
    select ${t.orgId}, ${t.projectId}, 'e' || g, 'purchase', 'user-' || (g % 5000),
           ${NOW}::timestamptz - interval '400 days' - (g % 8640000) * interval '1 second',
           ${NOW}::timestamptz - interval '400 days', '{"plan":"pro"}'::jsonb
    from generate_series(1, ${expired}) g
  `.execute(db);
  await sql`
    insert into sdk_events (org_id, project_id, event_id, name, user_id, ts, received_at, properties)
    select ${t.orgId}, ${t.projectId}, 'l' || g, 'purchase', 'user-' || (g % 5000),
           ${NOW}::timestamptz - (g % 8640000) * interval '1 second', ${NOW}, '{"plan":"pro"}'::jsonb
    from generate_series(1, ${live}) g
  `.execute(db);
}

/** Inserts 100-event batches of events dated NOW (never expired) on two connections until `stop` resolves. */
function ingestWhile(db: Db, t: { orgId: string; projectId: string }, stop: Promise<unknown>) {
  let done = false;
  void stop.finally(() => {
    done = true;
  });
  const started = performance.now();
  let rows = 0;
  let maxBatchMs = 0;
  const writer = async (id: number) => {
    while (!done) {
      const base = `w${id}-${sequence++}-`;
      const t0 = performance.now();
      await sql`
        insert into sdk_events (org_id, project_id, event_id, name, ts, received_at)
        select ${t.orgId}, ${t.projectId}, ${base} || g, 'open', ${NOW}::timestamptz, ${NOW}::timestamptz
        from generate_series(1, ${INGEST_BATCH}) g
      `.execute(db);
      maxBatchMs = Math.max(maxBatchMs, performance.now() - t0);
      rows += INGEST_BATCH;
    }
  };
  return Promise.all([writer(1), writer(2)]).then(
    (): IngestWindow => ({ rowsPerSecond: (rows * 1000) / (performance.now() - started), maxBatchMs }),
  );
}

async function count(db: Db, projectId: string): Promise<number> {
  const row = await db
    .selectFrom("sdk_events")
    .select((eb) => eb.fn.countAll<string>().as("n"))
    .where("project_id", "=", projectId)
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

export async function benchPurge(resources: Resources, options: PurgeOptions): Promise<PurgeFigures> {
  const owner = createNodeDb(options.ownerUrl, 4);
  const closeOwner = resources.add("purge bench owner pool", () => owner.destroy());
  const maintenance = createNodeDb(maintenanceRoleUrl(options.ownerUrl), 1);
  const closeMaintenance = resources.add("purge bench maintenance pool", () => maintenance.destroy());
  try {
    // Earlier bench parts leave old events behind; clear what is already expired so this part times
    // exactly its own 500k rows (purgeExpired works across every project).
    for (;;) if (!(await purgeExpired(maintenance, NOW, DEFAULT_LIMITS)).more) break;
    const purgeSide = await createTenant(owner);
    const plainSide = await createTenant(owner);
    const ingestSide = await createTenant(owner);
    await load(owner, purgeSide, options.rows);
    await load(owner, plainSide, options.rows);
    await sql`vacuum analyze sdk_events`.execute(owner);
    const live = Math.ceil(options.rows / 10);

    const cutoff = new Date(NOW.getTime() - 400 * 86_400_000);
    const explain = await sql<{ "QUERY PLAN": string }>`
      explain select project_id, event_id from sdk_events
      where project_id = ${purgeSide.projectId} and ts < ${cutoff} order by ts limit ${DEFAULT_LIMITS.chunkSize}
    `.execute(owner);
    const plan = explain.rows.map((r) => r["QUERY PLAN"].trim()).join(" / ");

    // Ingest alone, as long as a short window, for the baseline insert rate.
    const idleIngest = await ingestWhile(owner, ingestSide, new Promise((r) => setTimeout(r, 3_000)));

    let t0 = performance.now();
    const plainWork =
      sql`delete from sdk_events where project_id = ${plainSide.projectId} and ts < ${cutoff}`.execute(
        maintenance,
      );
    const plainIngest = ingestWhile(owner, ingestSide, plainWork);
    const plainResult = await plainWork;
    const plainMs = performance.now() - t0;
    const plainRows = Number(plainResult.numAffectedRows ?? 0n);

    t0 = performance.now();
    let purged = 0;
    let runs = 0;
    const purgeWork = (async () => {
      for (;;) {
        const result = await purgeExpired(maintenance, NOW, DEFAULT_LIMITS);
        runs += 1;
        purged += result.counts.sdk_events;
        if (!result.more) return;
      }
    })();
    const purgeIngest = ingestWhile(owner, ingestSide, purgeWork);
    await purgeWork;
    const purgeMs = performance.now() - t0;

    if (purged !== options.rows || plainRows !== options.rows) {
      throw new Error(`purge: expected ${options.rows} rows per side, purge ${purged}, plain ${plainRows}`);
    }
    if (
      (await count(owner, purgeSide.projectId)) !== live ||
      (await count(owner, plainSide.projectId)) !== live
    ) {
      throw new Error("purge: live rows were deleted");
    }
    const purge = {
      rows: purged,
      elapsedMs: purgeMs,
      rowsPerSecond: (purged * 1000) / purgeMs,
      runs,
      ingest: await purgeIngest,
    };
    const plain = {
      rows: plainRows,
      elapsedMs: plainMs,
      rowsPerSecond: (plainRows * 1000) / plainMs,
      ingest: await plainIngest,
    };
    return { purge, plain, idleIngest, ratio: purge.rowsPerSecond / plain.rowsPerSecond, plan };
  } finally {
    await closeMaintenance();
    await closeOwner();
  }
}

const int = (n: number) => Math.round(n).toLocaleString("en-US");

export function purgeLines(f: PurgeFigures): string {
  const ingest = (w: IngestWindow) => `${int(w.rowsPerSecond)} rows/s, slowest batch ${int(w.maxBatchMs)} ms`;
  return [
    `(e) purge   ${int(f.purge.rows)} expired events: purgeExpired ${int(f.purge.elapsedMs)} ms, ` +
      `${int(f.purge.rowsPerSecond)} rows/s in ${f.purge.runs} budgeted runs | plain DELETE ${int(f.plain.elapsedMs)} ms, ` +
      `${int(f.plain.rowsPerSecond)} rows/s | ratio ${f.ratio.toFixed(2)}`,
    `    concurrent inserts (2 connections, ${INGEST_BATCH}-row batches): alone ${ingest(f.idleIngest)} | ` +
      `during purge ${ingest(f.purge.ingest)} | during plain DELETE ${ingest(f.plain.ingest)}`,
    `    chunk select plan: ${f.plan}`,
  ].join("\n");
}
