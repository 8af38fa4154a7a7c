import { sql } from "kysely";
import type { Db } from "../../shared/db";
import { DEFAULT_LIMITS, daysBefore, RETENTION, type RetentionLimits } from "../retention/policy";
import type { ObjectStore } from "../storage/objectStore";
import { auditObjectKey } from "./auditKeys";
import { decodeNdjsonGz, encodeNdjsonGz, sha256OfBytes } from "./ndjson";

/** One audit row as archived: every column; the timestamp as UTC text with its full microseconds. */
export interface ArchivedAuditRow {
  id: string;
  org_id: string;
  occurred_at: string;
  actor_type: string;
  actor_id: string;
  action: string;
  resource_type: string;
  resource_id: string;
  request_id: string | null;
  changes: unknown;
}

export interface ArchiveCounts {
  audit_archived: number;
  audit_objects_written: number;
}

export class ArchiveVerificationError extends Error {
  override name = "ArchiveVerificationError";
}

/**
 * Moves audit rows older than the hot period to the cold archive, oldest org-day first, at most the
 * run's row budget. Per batch (one org and UTC day), inside one transaction:
 *   1. take a per-object advisory lock (two overlapping runs never rewrite one object at once),
 *   2. read the batch of expired rows,
 *   3. merge them into the org-day's existing object if there is one (a run that archived and then
 *      failed before deleting, or rows that arrived late): union by id, so nothing is dropped or doubled,
 *   4. write the object, read it back, and compare hash, row count and ids,
 *   5. only then delete the batch's rows.
 * A failure anywhere rolls the delete back: the rows stay hot and the next run repeats the batch, which
 * step 3 makes harmless.
 */
export async function archiveAuditLog(
  db: Db,
  storage: ObjectStore,
  now: Date,
  limits: RetentionLimits = DEFAULT_LIMITS,
): Promise<{ counts: ArchiveCounts; more: boolean }> {
  const cutoff = daysBefore(now, RETENTION.auditHotDays);
  const counts: ArchiveCounts = { audit_archived: 0, audit_objects_written: 0 };
  while (counts.audit_archived < limits.rowBudget) {
    // The oldest expired row names the next org-day (audit_log_time answers this with one index probe).
    const oldest = await sql<{ org_id: string; day: string }>`
      select org_id, to_char(occurred_at at time zone 'UTC', 'YYYY-MM-DD') as day
      from audit_log where occurred_at < ${cutoff}
      order by occurred_at, id limit 1
    `.execute(db);
    const next = oldest.rows[0];
    if (!next) return { counts, more: false };
    const batchSize = Math.min(limits.chunkSize, limits.rowBudget - counts.audit_archived);
    const archived = await archiveBatch(db, storage, next.org_id, next.day, cutoff, batchSize);
    // Nothing left the table (another run got there first): stop rather than spin on the same org-day.
    if (archived === 0) return { counts, more: true };
    counts.audit_archived += archived;
    counts.audit_objects_written += 1;
  }
  return { counts, more: true };
}

async function archiveBatch(
  db: Db,
  storage: ObjectStore,
  orgId: string,
  day: string,
  cutoff: Date,
  batchSize: number,
): Promise<number> {
  const key = auditObjectKey(orgId, day);
  return db.transaction().execute(async (tx) => {
    await sql`select pg_advisory_xact_lock(hashtext(${key}))`.execute(tx);
    const dayStart = new Date(`${day}T00:00:00Z`);
    const dayEnd = new Date(dayStart.getTime() + 86_400_000);
    const batch = await sql<ArchivedAuditRow>`
      select id, org_id,
             to_char(occurred_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') as occurred_at,
             actor_type, actor_id, action, resource_type, resource_id, request_id, changes
      from audit_log
      where org_id = ${orgId} and occurred_at >= ${dayStart} and occurred_at < ${dayEnd}
        and occurred_at < ${cutoff}
      order by occurred_at, id
      limit ${batchSize}
    `.execute(tx);
    if (batch.rows.length === 0) return 0;

    const existing = await storage.get(key);
    const merged = new Map<string, ArchivedAuditRow>();
    if (existing) {
      for (const row of (await decodeNdjsonGz(existing)) as ArchivedAuditRow[]) merged.set(row.id, row);
    }
    for (const row of batch.rows) merged.set(row.id, row);
    const rows = [...merged.values()].sort(
      (a, b) => a.occurred_at.localeCompare(b.occurred_at) || a.id.localeCompare(b.id),
    );
    const body = await encodeNdjsonGz(rows);
    await storage.put(key, body, "application/x-ndjson");
    await verify(storage, key, body, rows.length, batch.rows);

    // The org's index of its archive days (read by the audit-log API and the export), in the transaction
    // that deletes the rows: a row is findable in the hot table or through the index, never neither.
    await sql`
      insert into audit_archive_objects (org_id, day, object_key, row_count, updated_at)
      values (${orgId}, ${day}::date, ${key}, ${rows.length}, now())
      on conflict (org_id, day) do update
        set object_key = excluded.object_key, row_count = excluded.row_count, updated_at = excluded.updated_at
    `.execute(tx);
    const ids = batch.rows.map((row) => row.id);
    const deleted = await sql`delete from audit_log where id = any(${ids}::text[])`.execute(tx);
    return Number(deleted.numAffectedRows ?? 0n);
  });
}

/** The object as stored must be byte-identical to what was written and hold every row about to go. */
async function verify(
  storage: ObjectStore,
  key: string,
  written: Uint8Array,
  expectedRows: number,
  batch: readonly ArchivedAuditRow[],
): Promise<void> {
  const stored = await storage.get(key);
  if (!stored) throw new ArchiveVerificationError(`archive ${key} is missing after it was written`);
  const [wrote, read] = await Promise.all([sha256OfBytes(written), sha256OfBytes(stored)]);
  if (wrote !== read) throw new ArchiveVerificationError(`archive ${key} reads back different bytes`);
  const rows = (await decodeNdjsonGz(stored)) as ArchivedAuditRow[];
  const ids = new Set(rows.map((row) => row.id));
  if (rows.length !== expectedRows || batch.some((row) => !ids.has(row.id))) {
    throw new ArchiveVerificationError(`archive ${key} does not hold the rows it was written with`);
  }
}
