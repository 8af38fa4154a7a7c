import { sql } from "kysely";
import type { Db } from "../../shared/db";
import { writeAudit } from "../audit/writeAudit";
import { runnerMayBeWriting } from "../exports/lease";
import { withdrawExportsWithEvents } from "../exports/withdraw";
import { planSteps, readCatalogue, type Scope, type Step } from "./catalogue";
import { deleteKeys, type LifecycleStores, objectSweeps } from "./objects";

/** Rows per DELETE statement: each batch is its own short transaction, so no lock is held for long. */
export const CASCADE_BATCH_ROWS = 5_000;
/** Rows one Cron run may delete, over every deletion it works on, before handing the rest to the next run. */
export const CASCADE_ROWS_PER_RUN = 500_000;
/** Objects one Cron run may list and delete (deleted 1,000 per request). */
export const CASCADE_OBJECTS_PER_RUN = 50_000;
/** Keys per listing page (S3's maximum). */
const LIST_PAGE = 1_000;
/**
 * A running deletion is taken over by another run only when its last progress (heartbeat_at) is older than
 * this: the run holding it died. A run that stops on purpose (budget spent, a step failed) releases it.
 */
export const CASCADE_LEASE_MS = 10 * 60_000;
/** How long an org-deletion receipt stays readable after the deletion completed. */
export const RECEIPT_LIFETIME_MS = 2 * 365 * 24 * 3600_000;

export type DeletionKind = "org" | "project";
const TABLE = { org: "org_deletions", project: "project_deletions" } as const;

export interface CascadeOptions extends LifecycleStores {
  batchRows?: number;
  maxRowsPerRun?: number;
  maxObjectsPerRun?: number;
  /** Tests: called after every committed batch (rows or a page of objects), to cut a run short there. */
  afterBatch?: (info: { deletionId: string; step: string; n: number }) => Promise<void> | void;
}

interface Claimed {
  id: string;
  org_id: string;
  project_id: string | null;
  cursors: Record<string, { after?: string; done?: boolean }>;
}

interface Budget {
  rows: number;
  objects: number;
}

/**
 * Carries out open deletions of one kind, oldest first, as the maintenance role (BYPASSRLS). A deletion is
 * claimed (`for update skip locked`, then a lease renewed by every batch), so two overlapping Cron runs never
 * work on the same one; its objects go first (a copy outside the database is never left behind a completed
 * receipt), then its rows, table by table in foreign-key order, each batch deleting up to `batchRows` rows
 * by tuple id and adding its count to the deletion row in the same statement: a run cut short at any point
 * resumes with exact counts. It completes (receipt closed, audit row for a project) in one transaction that
 * first checks every table is empty of the scope: a row written behind the cascade is erased, not missed.
 */
export async function runDeletions(
  db: Db,
  kind: DeletionKind,
  now: Date,
  options: CascadeOptions = {},
): Promise<{ counts: Record<string, number>; more: boolean }> {
  const budget: Budget = {
    rows: options.maxRowsPerRun ?? CASCADE_ROWS_PER_RUN,
    objects: options.maxObjectsPerRun ?? CASCADE_OBJECTS_PER_RUN,
  };
  const counts: Record<string, number> = { deletions_completed: 0, deletions_failed_runs: 0 };
  const add = (cls: string, n: number) => {
    counts[cls] = (counts[cls] ?? 0) + n;
  };
  const catalogue = await readCatalogue(db);
  const tried: string[] = [];
  // A deletion whose step failed in this run is left for the next one: there is more to do.
  let failed = false;
  while (budget.rows > 0 && budget.objects > 0) {
    const claimed = await claim(db, kind, now, tried);
    if (!claimed) return { counts, more: failed };
    tried.push(claimed.id);
    const scope: Scope =
      kind === "org"
        ? { kind: "org", orgId: claimed.org_id }
        : { kind: "project", orgId: claimed.org_id, projectId: claimed.project_id as string };
    try {
      const objectsDone = await sweepObjects(db, kind, claimed, scope, now, budget, options, add);
      if (!objectsDone) {
        await release(db, kind, claimed.id);
        return { counts, more: true };
      }
      const { steps } = planSteps(catalogue, scope);
      for (;;) {
        const rowsDone = await deleteRows(db, kind, claimed.id, steps, now, budget, options, add);
        if (!rowsDone) {
          await release(db, kind, claimed.id);
          return { counts, more: true };
        }
        const completed = await complete(db, kind, claimed, scope, steps, now);
        if (completed !== "rows_left") {
          if (completed === "completed") counts.deletions_completed = (counts.deletions_completed ?? 0) + 1;
          break;
        }
      }
    } catch (error) {
      counts.deletions_failed_runs = (counts.deletions_failed_runs ?? 0) + 1;
      failed = true;
      await recordFailure(db, kind, claimed.id, error);
    }
  }
  return { counts, more: true };
}

async function claim(db: Db, kind: DeletionKind, now: Date, tried: string[]): Promise<Claimed | null> {
  const table = sql.table(TABLE[kind]);
  const skip = tried.length > 0 ? tried : [""];
  const leaseCutoff = new Date(now.getTime() - CASCADE_LEASE_MS);
  // A project deletion of an org being deleted is left to the org's deletion (which erases it with the rest).
  const notInOrgDeletion =
    kind === "project"
      ? sql`and not exists (select 1 from org_deletions o where o.org_id = d.org_id)`
      : sql``;
  const projectColumn = kind === "project" ? sql`project_id` : sql`null::text as project_id`;
  const { rows } = await sql<Claimed>`
    update ${table} set status = 'running', started_at = coalesce(started_at, ${now}), heartbeat_at = ${now}
    where id = (
      select d.id from ${table} d
      where d.requested_at <= ${now} and d.id <> all(${skip}::text[])
        and (d.status = 'pending'
          or (d.status = 'running' and (d.heartbeat_at is null or d.heartbeat_at < ${leaseCutoff})))
        ${notInOrgDeletion}
      order by d.requested_at, d.id
      limit 1
      for update skip locked
    )
    returning id, org_id, ${projectColumn}, cursors
  `.execute(db);
  return rows[0] ?? null;
}

/** Returns false when the object budget ran out first, or the exports sweep must wait for a runner. */
async function sweepObjects(
  db: Db,
  kind: DeletionKind,
  claimed: Claimed,
  scope: Scope,
  now: Date,
  budget: Budget,
  options: CascadeOptions,
  add: (cls: string, n: number) => void,
): Promise<boolean> {
  const table = sql.table(TABLE[kind]);
  for (const sweep of objectSweeps(scope)) {
    const store = options[sweep.bucket];
    // A bucket this Worker is not configured with holds nothing of ours (dev without S3_ENDPOINT).
    if (!store) continue;
    const cursor = claimed.cursors[sweep.name] ?? {};
    if (cursor.done) continue;
    // An export run that took the org's export before the org was marked may still be writing a part: it
    // writes for at most half its lease and records nothing once the org is marked (functions/exports/
    // runExport.ts), so a lease after its last heartbeat nothing more lands under the prefix. Until then the
    // sweep waits (this run moves on; a later one resumes here).
    if (sweep.bucket === "exports" && (await exportMayBeWriting(db, scope.orgId, now))) return false;
    let after = cursor.after;
    for (;;) {
      if (budget.objects <= 0) return false;
      const page = await store.list(sweep.prefix, after ? { startAfter: after } : {});
      const keys = page.keys.slice(0, Math.min(LIST_PAGE, budget.objects));
      const doomed = keys.filter((k) => sweep.matches(k));
      await deleteKeys(store, doomed);
      const last = keys.at(-1);
      const done = keys.length === page.keys.length && !page.next;
      const state = { ...(last !== undefined ? { after: last } : after ? { after } : {}), done };
      claimed.cursors[sweep.name] = state;
      // The count and the cursor move together: a run that dies before this lists the page again, and
      // finds the keys it deleted gone, so nothing is counted twice.
      await sql`
        update ${table} set
          counts = jsonb_set(counts, array[${sweep.name}::text],
            to_jsonb(coalesce((counts->>${sweep.name}::text)::bigint, 0) + ${doomed.length}::bigint)),
          cursors = jsonb_set(cursors, array[${sweep.name}::text], ${JSON.stringify(state)}::jsonb),
          step = ${sweep.name}, heartbeat_at = ${now}
        where id = ${claimed.id} and status = 'running'
      `.execute(db);
      budget.objects -= Math.max(keys.length, 1);
      add(sweep.name, doomed.length);
      await options.afterBatch?.({ deletionId: claimed.id, step: sweep.name, n: doomed.length });
      if (done) break;
      after = last ?? after;
    }
  }
  return true;
}

/** Whether an export of the org may still be written by its runner (functions/exports/lease.ts). */
async function exportMayBeWriting(db: Db, orgId: string, now: Date): Promise<boolean> {
  const { rows } = await sql`
    select 1 from org_exports where org_id = ${orgId} and ${runnerMayBeWriting(now)} limit 1
  `.execute(db);
  return rows.length > 0;
}

/** Returns false when the row budget ran out first. */
async function deleteRows(
  db: Db,
  kind: DeletionKind,
  deletionId: string,
  steps: Step[],
  now: Date,
  budget: Budget,
  options: CascadeOptions,
  add: (cls: string, n: number) => void,
): Promise<boolean> {
  const batchRows = options.batchRows ?? CASCADE_BATCH_ROWS;
  const deletions = sql.table(TABLE[kind]);
  for (const step of steps) {
    const table = sql.table(step.table);
    for (;;) {
      if (budget.rows <= 0) return false;
      const limit = Math.min(batchRows, budget.rows);
      // One statement: the batch is picked by the scope's index, deleted by tuple id, and counted on the
      // deletion row, all or nothing. The delete happens only while this deletion is still running.
      const { rows } = await sql<{ n: string }>`
        with gone as (
          delete from ${table}
          where ctid = any(array(select ctid from ${table} where ${step.where} limit ${limit}))
            and exists (select 1 from ${deletions} where id = ${deletionId} and status = 'running')
          returning 1
        ), n as (select count(*)::bigint as n from gone)
        update ${deletions} set
          counts = jsonb_set(counts, array[${step.table}::text],
            to_jsonb(coalesce((counts->>${step.table}::text)::bigint, 0) + (select n from n))),
          step = ${step.table}, heartbeat_at = ${now}
        where id = ${deletionId} and status = 'running'
        returning (select n from n) as n
      `.execute(db);
      const n = Number(rows[0]?.n ?? 0);
      budget.rows -= n;
      add(step.table, n);
      if (n > 0) await options.afterBatch?.({ deletionId, step: step.table, n });
      if (n < limit) break;
    }
  }
  return true;
}

/**
 * Closes the deletion if every step's table is empty of the scope (else "rows_left": a row was written
 * behind the cascade, and the caller goes round again). The row is locked first and must still be running:
 * of two runs that get here, the second finds it completed and does nothing.
 */
async function complete(
  db: Db,
  kind: DeletionKind,
  claimed: Claimed,
  scope: Scope,
  steps: Step[],
  now: Date,
): Promise<"completed" | "rows_left" | "gone"> {
  return db.transaction().execute(async (tx) => {
    const table = sql.table(TABLE[kind]);
    const { rows: open } = await sql<{ counts: Record<string, number> }>`
      select counts from ${table} where id = ${claimed.id} and status = 'running' for update
    `.execute(tx);
    const row = open[0];
    if (!row) return "gone";
    const probes = steps.map(
      (s) =>
        sql`select ${s.table}::text as t where exists (select 1 from ${sql.table(s.table)} where ${s.where})`,
    );
    const { rows: left } = await sql<{ t: string }>`${sql.join(probes, sql` union all `)}`.execute(tx);
    if (left.length > 0) return "rows_left";
    if (kind === "org") {
      await sql`
        update org_deletions set status = 'completed', org_id = null, finished_at = ${now}, heartbeat_at = null,
          step = null, cursors = '{}', purge_after = ${new Date(now.getTime() + RECEIPT_LIFETIME_MS)}
        where id = ${claimed.id}
      `.execute(tx);
      return "completed";
    }
    await sql`
      update project_deletions set status = 'completed', finished_at = ${now}, heartbeat_at = null, step = null,
        cursors = '{}'
      where id = ${claimed.id}
    `.execute(tx);
    if (scope.kind === "project") {
      const withdrawnExports = await withdrawExportsWithEvents(tx, scope.orgId, scope.projectId, now);
      await writeAudit(
        tx,
        scope.orgId,
        {
          actor: { type: "system", id: "cron:project-deletions" },
          action: "project.deleted",
          resourceType: "project",
          resourceId: scope.projectId,
          requestId: null,
          before: { status: "running" },
          after: { status: "completed", deletionId: claimed.id, counts: row.counts, withdrawnExports },
        },
        now,
      );
    }
    return "completed";
  });
}

/** Gives the deletion back so the next run resumes it at once instead of waiting for the lease. */
async function release(db: Db, kind: DeletionKind, id: string): Promise<void> {
  await sql`update ${sql.table(TABLE[kind])} set heartbeat_at = null where id = ${id} and status = 'running'`.execute(
    db,
  );
}

/**
 * A step failed (database or storage). A deletion never gives up: it stays running, released, and the next
 * run resumes it; the receipt shows the attempts and the last error's code (never its text).
 */
async function recordFailure(db: Db, kind: DeletionKind, id: string, error: unknown): Promise<void> {
  const raw = (error as { code?: unknown; name?: unknown } | null) ?? {};
  const candidate =
    typeof raw.code === "string" ? raw.code : typeof raw.name === "string" ? raw.name : "error";
  const code = /^[A-Za-z0-9_]{1,64}$/.test(candidate) ? candidate : "error";
  await sql`
    update ${sql.table(TABLE[kind])} set attempts = attempts + 1, failure_code = ${code}, heartbeat_at = null
    where id = ${id} and status = 'running'
  `
    .execute(db)
    .catch(() => {});
}

/** Receipts of org deletions completed more than two years ago go, up to `limit` per run. */
export async function purgeOrgDeletionReceipts(
  db: Db,
  now: Date,
  limit = 10_000,
): Promise<{ counts: Record<string, number> }> {
  const { rows } = await sql<{ n: string }>`
    with gone as (
      delete from org_deletions where id in (
        select id from org_deletions where purge_after is not null and purge_after <= ${now}
        order by purge_after limit ${limit})
      returning 1
    ) select count(*) as n from gone
  `.execute(db);
  return { counts: { org_deletion_receipts: Number(rows[0]?.n ?? 0) } };
}
