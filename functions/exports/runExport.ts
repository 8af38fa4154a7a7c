import { createHash } from "node:crypto";
import { type ExpressionBuilder, type RawBuilder, sql } from "kysely";
import { type Db, type Tx, withTenant } from "../../shared/db";
import type { DB } from "../../shared/db/types";
import { newId } from "../../shared/ids";
import { decodeNdjsonGz } from "../archive/ndjson";
import { deletePrefix } from "../lifecycle/objects";
import type { ObjectStore } from "../storage/objectStore";
import { EXPORT_LEASE_SECONDS, EXPORT_OBJECT_DAYS } from "./lifetimes";
import {
  COLD_AUDIT_FILE,
  EXCLUDED_TABLES,
  EXPORT_RESOURCES,
  EXPORT_SCHEMA_VERSION,
  type ExportResource,
} from "./resources";
import { BLOCK, tarEnd, tarHeader, tarPadding } from "./tar";

// The export job, in bounded steps. Each step reads one keyset page of one resource (or a few cold audit
// objects, or a few media objects), writes it as one gzip part to the export bucket, and only then records
// the new position in org_exports.state. A step that dies between the two writes the same part under the
// same key again: no row is duplicated, none skipped. The final step streams the parts into one tar in an
// S3 multipart upload (memory: one part buffer plus one source object), then deletes the parts.

export interface ExportLimits {
  /** Rows per part (one keyset page). */
  pageRows: number;
  /** Steps one run may take before it leaves the rest to the next run. */
  stepsPerRun: number;
  /** A running export whose heartbeat is older than this is taken over (its runner died). */
  leaseSeconds: number;
  /** Multipart part size (S3 and R2: at least 5 MiB except the last). */
  partBytes: number;
  /**
   * Failed runs in a row, without a step recorded in between, before the export is marked failed. Run n
   * after a failure waits retryBackoffSeconds[n - 1] (the last entry for later ones).
   */
  maxAttempts: number;
  retryBackoffSeconds: readonly number[];
  /** Cold audit objects or media objects per step. */
  objectsPerStep: number;
}

export const DEFAULT_EXPORT_LIMITS: ExportLimits = {
  pageRows: 5_000,
  stepsPerRun: 50,
  leaseSeconds: EXPORT_LEASE_SECONDS,
  partBytes: 8 * 1024 * 1024,
  // 1 + 5 + 15 + 30 + 60 + 120 minutes: an export fails only after about four hours without progress (a
  // storage or database outage of an hour is waited out), and a long export is not failed by a handful of
  // transient errors spread over its life.
  maxAttempts: 7,
  retryBackoffSeconds: [60, 300, 900, 1_800, 3_600, 7_200],
  objectsPerStep: 20,
};

export interface ExportDeps {
  /** The exporter role's handle (not BYPASSRLS: every read is in the org's tenant transaction). */
  db: Db;
  exports: ObjectStore;
  /** The cold audit archive bucket; without it the archived audit file is empty and the manifest says so. */
  archive?: ObjectStore | undefined;
  /** Generated media of `cloud` storage content; without it media are not included (the manifest says so). */
  media?: ObjectStore | undefined;
  now: Date;
  limits: ExportLimits;
}

interface FileState {
  parts: number;
  bytes: number;
  rows: number;
}

/** org_exports.state: where the job is. */
export interface ExportState {
  step?: number;
  /** The keyset position (key values as text) of the last row or object written in this step. */
  cursor?: string[] | null;
  files?: Record<string, FileState>;
  media?: { objects: number; bytes: number; missing: number };
  /** The multipart upload of an assembly that did not finish (aborted by the next attempt). */
  uploadId?: string | null;
  /** A failed export whose objects are still to be deleted (by the expiry job, functions/exports/jobs.ts). */
  cleanup?: boolean;
}

interface ExportRow {
  id: string;
  org_id: string;
  status: string;
  project_ids: string[] | null;
  include_events: boolean;
  state: ExportState;
  attempts: number;
  heartbeat_at: Date | null;
  created_at: Date;
}

type Step =
  | { kind: "table"; resource: ExportResource }
  | { kind: "cold_audit" }
  | { kind: "media" }
  | { kind: "assemble" };

export function planOf(job: { include_events: boolean }): Step[] {
  return [
    ...EXPORT_RESOURCES.filter((r) => job.include_events || !r.events).map(
      (resource): Step => ({ kind: "table", resource }),
    ),
    { kind: "cold_audit" },
    { kind: "media" },
    { kind: "assemble" },
  ];
}

export function exportPrefix(orgId: string, exportId: string): string {
  return `exports/${encodeURIComponent(orgId)}/${exportId}/`;
}

export function archiveKey(orgId: string, exportId: string): string {
  return `${exportPrefix(orgId, exportId)}layers-export-${exportId}.tar`;
}

function partKey(orgId: string, exportId: string, file: string, part: number): string {
  return `${exportPrefix(orgId, exportId)}parts/${file}/${String(part).padStart(6, "0")}.gz`;
}

function mediaKey(orgId: string, exportId: string, containerId: string): string {
  return `${exportPrefix(orgId, exportId)}media/${containerId}`;
}

async function gzipLines(lines: readonly string[]): Promise<Uint8Array> {
  const text = lines.map((line) => `${line}\n`).join("");
  const stream = new Blob([text]).stream().pipeThrough(new CompressionStream("gzip"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

/** A tenant transaction that also fixes the session's time zone, so timestamps are written in UTC. */
function inOrg<T>(db: Db, orgId: string, fn: (tx: Tx) => Promise<T>): Promise<T> {
  return withTenant(db, orgId, async (tx) => {
    await sql`select set_config('timezone', 'UTC', true)`.execute(tx);
    return fn(tx);
  });
}

/** One keyset page of a resource: each row as its JSON line, and its key values as text. */
async function readPage(
  tx: Tx,
  job: ExportRow,
  resource: ExportResource,
  cursor: readonly string[] | null,
  limit: number,
): Promise<{ line: string; key: string[] }[]> {
  const fields = sql.join(resource.columns.map((c) => sql`${sql.lit(c)}, ${sql.ref(c)}`));
  const keys = resource.key.map((k) => sql`${sql.ref(k)}::text`);
  const conditions: RawBuilder<unknown>[] = [sql`${sql.ref(resource.orgColumn)} = ${job.org_id}`];
  if (job.project_ids && resource.scope !== "org") {
    const project = sql.ref(resource.projectColumn ?? "project_id");
    conditions.push(
      resource.scope === "project"
        ? sql`${project} = any(${job.project_ids}::text[])`
        : sql`(${project} is null or ${project} = any(${job.project_ids}::text[]))`,
    );
  }
  if (cursor) {
    conditions.push(sql`(${sql.join(keys)}) > (${sql.join(cursor.map((v) => sql`${v}`))})`);
  }
  const result = await sql<{ line: string; k: string[] }>`
    select json_build_object(${fields})::text as line, array[${sql.join(keys)}] as k
    from ${sql.table(resource.table)}
    where ${sql.join(conditions, sql` and `)}
    order by ${sql.join(keys)}
    limit ${limit}
  `.execute(tx);
  return result.rows.map((row) => ({ line: row.line, key: row.k }));
}

/** Thrown when another runner took the export over: this one stops without writing. */
class LeaseLost extends Error {}

interface Runner {
  deps: ExportDeps;
  job: ExportRow;
  /** A step was recorded in this run (the failures before it no longer count). */
  progressed: boolean;
  state: Required<Pick<ExportState, "step" | "files" | "media">> & ExportState;
}

/**
 * Records the job's new position, if this runner still holds the export and its org is not being deleted
 * (else LeaseLost: the runner stops). A recorded step is progress: the failures counted so far are forgotten.
 */
async function save(run: Runner, extra: Record<string, unknown> = {}): Promise<void> {
  const { deps, job } = run;
  const counts: Record<string, number> = {};
  for (const [name, file] of Object.entries(run.state.files)) counts[name] = file.rows;
  counts.media_objects = run.state.media.objects;
  const updated = await inOrg(deps.db, job.org_id, (tx) =>
    tx
      .updateTable("org_exports")
      .set({
        state: JSON.stringify(run.state),
        counts: JSON.stringify(counts),
        heartbeat_at: deps.now,
        attempts: 0,
        ...extra,
      })
      .where("id", "=", job.id)
      .where("status", "=", "running")
      .where("heartbeat_at", "=", deps.now)
      .where(orgNotMarked)
      .executeTakeFirst(),
  );
  if (Number(updated.numUpdatedRows) !== 1) throw new LeaseLost(`export ${job.id} was taken over`);
  run.progressed = true;
}

function fileOf(run: Runner, name: string): FileState {
  run.state.files[name] ??= { parts: 0, bytes: 0, rows: 0 };
  return run.state.files[name];
}

async function putPart(run: Runner, name: string, lines: readonly string[]): Promise<void> {
  const file = fileOf(run, name);
  const body = await gzipLines(lines);
  await run.deps.exports.put(partKey(run.job.org_id, run.job.id, name, file.parts), body, "application/gzip");
  file.parts += 1;
  file.bytes += body.length;
  file.rows += lines.length;
}

function nextStep(run: Runner): void {
  run.state.step += 1;
  run.state.cursor = null;
}

async function tableStep(run: Runner, resource: ExportResource): Promise<void> {
  const { deps, job } = run;
  const rows = await inOrg(deps.db, job.org_id, (tx) =>
    readPage(tx, job, resource, run.state.cursor ?? null, deps.limits.pageRows),
  );
  // An empty resource is still a file (an empty gzip member), so every file the manifest names exists.
  if (rows.length > 0 || fileOf(run, resource.name).parts === 0) {
    await putPart(
      run,
      resource.name,
      rows.map((r) => r.line),
    );
  }
  if (rows.length < deps.limits.pageRows) nextStep(run);
  else run.state.cursor = rows.at(-1)?.key ?? null;
}

async function coldAuditStep(run: Runner): Promise<void> {
  const { deps, job } = run;
  const after = run.state.cursor?.[0] ?? "0001-01-01";
  const objects = deps.archive
    ? await inOrg(deps.db, job.org_id, (tx) =>
        tx
          .selectFrom("audit_archive_objects")
          .select([sql<string>`day::text`.as("day"), "object_key"])
          .where("org_id", "=", job.org_id)
          .where(sql<boolean>`day > ${after}::date`)
          .orderBy("day")
          .limit(deps.limits.objectsPerStep)
          .execute(),
      )
    : [];
  const lines: string[] = [];
  for (const object of objects) {
    const bytes = await deps.archive?.get(object.object_key);
    // A day expired by the archive's own retention between the index read and now: nothing to export.
    if (!bytes) continue;
    for (const row of await decodeNdjsonGz(bytes)) lines.push(JSON.stringify(row));
  }
  if (lines.length > 0 || fileOf(run, COLD_AUDIT_FILE).parts === 0)
    await putPart(run, COLD_AUDIT_FILE, lines);
  if (objects.length < deps.limits.objectsPerStep) nextStep(run);
  else run.state.cursor = [objects.at(-1)?.day ?? after];
}

async function mediaStep(run: Runner): Promise<void> {
  const { deps, job } = run;
  if (!deps.media) return nextStep(run);
  const after = run.state.cursor?.[0] ?? "";
  const containers = await inOrg(deps.db, job.org_id, (tx) => {
    let q = tx
      .selectFrom("content_containers")
      .select(["id", "object_key"])
      .where("org_id", "=", job.org_id)
      .where("storage_mode", "=", "cloud")
      .where("id", ">", after);
    if (job.project_ids) q = q.where("project_id", "in", job.project_ids);
    return q.orderBy("id").limit(deps.limits.objectsPerStep).execute();
  });
  for (const container of containers) {
    const bytes = await deps.media.get(container.object_key);
    if (!bytes) {
      run.state.media.missing += 1;
      continue;
    }
    await deps.exports.put(mediaKey(job.org_id, job.id, container.id), bytes, "application/octet-stream");
    run.state.media.objects += 1;
    run.state.media.bytes += bytes.length;
  }
  if (containers.length < deps.limits.objectsPerStep) nextStep(run);
  else run.state.cursor = [containers.at(-1)?.id ?? after];
}

/** Collects bytes into multipart parts of at least `partBytes` (the last may be smaller). */
class MultipartWriter {
  private chunks: Uint8Array[] = [];
  private buffered = 0;
  private readonly parts: { partNumber: number; etag: string }[] = [];
  private readonly hash = createHash("sha256");
  size = 0;

  constructor(
    private readonly store: ObjectStore,
    private readonly key: string,
    private readonly uploadId: string,
    private readonly partBytes: number,
  ) {}

  async write(bytes: Uint8Array): Promise<void> {
    if (bytes.length === 0) return;
    this.chunks.push(bytes);
    this.buffered += bytes.length;
    this.size += bytes.length;
    this.hash.update(bytes);
    if (this.buffered >= this.partBytes) await this.flush();
  }

  private async flush(): Promise<void> {
    if (this.buffered === 0) return;
    const body = new Uint8Array(this.buffered);
    let offset = 0;
    for (const chunk of this.chunks) {
      body.set(chunk, offset);
      offset += chunk.length;
    }
    this.chunks = [];
    this.buffered = 0;
    const partNumber = this.parts.length + 1;
    const etag = await this.store.uploadPart(this.key, this.uploadId, partNumber, body);
    this.parts.push({ partNumber, etag });
  }

  async complete(): Promise<{ sha256: string; size: number; parts: number }> {
    await this.flush();
    await this.store.completeMultipart(this.key, this.uploadId, this.parts);
    return { sha256: this.hash.digest("hex"), size: this.size, parts: this.parts.length };
  }
}

async function assembleStep(run: Runner): Promise<void> {
  const { deps, job } = run;
  const key = archiveKey(job.org_id, job.id);
  // A previous attempt's upload (its runner died mid-assembly): discard it and start over from the parts.
  // Best effort: an upload that cannot be aborted is left to the bucket's own clean-up of unfinished uploads.
  if (run.state.uploadId) await deps.exports.abortMultipart(key, run.state.uploadId).catch(() => {});
  run.state.uploadId = await deps.exports.startMultipart(key, "application/x-tar");
  await save(run);
  const out = new MultipartWriter(deps.exports, key, run.state.uploadId, deps.limits.partBytes);
  const mtime = deps.now;

  const files: { name: string; resource: string; rows: number; bytes: number; sha256: string }[] = [];
  for (const step of planOf(job)) {
    const name =
      step.kind === "table" ? step.resource.name : step.kind === "cold_audit" ? COLD_AUDIT_FILE : undefined;
    if (!name) continue;
    const file = fileOf(run, name);
    const member = `${name}.ndjson.gz`;
    await out.write(tarHeader(member, file.bytes, mtime));
    const hash = createHash("sha256");
    let written = 0;
    for (let part = 0; part < file.parts; part++) {
      const bytes = await deps.exports.get(partKey(job.org_id, job.id, name, part));
      if (!bytes) throw new Error(`export ${job.id}: part ${part} of ${name} is missing`);
      hash.update(bytes);
      written += bytes.length;
      await out.write(bytes);
    }
    if (written !== file.bytes)
      throw new Error(`export ${job.id}: ${name} is ${written} bytes, not ${file.bytes}`);
    await out.write(tarPadding(file.bytes));
    files.push({
      name: member,
      resource: name,
      rows: file.rows,
      bytes: file.bytes,
      sha256: hash.digest("hex"),
    });
  }

  const media: { name: string; containerId: string; bytes: number; sha256: string }[] = [];
  const mediaPrefix = `${exportPrefix(job.org_id, job.id)}media/`;
  let after: string | undefined;
  do {
    const page = await deps.exports.list(mediaPrefix, after ? { after } : {});
    for (const objectKey of page.keys) {
      const bytes = await deps.exports.get(objectKey);
      if (!bytes) continue;
      const containerId = objectKey.slice(mediaPrefix.length);
      const member = `media/${containerId}`;
      await out.write(tarHeader(member, bytes.length, mtime));
      await out.write(bytes);
      await out.write(tarPadding(bytes.length));
      media.push({
        name: member,
        containerId,
        bytes: bytes.length,
        sha256: createHash("sha256").update(bytes).digest("hex"),
      });
    }
    after = page.next;
  } while (after);

  const manifest = {
    schemaVersion: EXPORT_SCHEMA_VERSION,
    exportId: job.id,
    orgId: job.org_id,
    generatedAt: deps.now.toISOString(),
    requestedAt: job.created_at.toISOString(),
    options: { projects: job.project_ids, includeEvents: job.include_events },
    format:
      "Each <resource>.ndjson.gz is gzip (possibly several members, as gunzip/zcat read them) of one JSON " +
      "object per line. Timestamps are ISO 8601 in UTC. media/<containerId> are the generated media of " +
      "content containers stored by Layers (storage mode cloud).",
    files,
    media,
    mediaMissing: run.state.media.missing,
    skipped: [
      ...EXPORT_RESOURCES.filter((r) => r.events && !job.include_events).map((r) => ({
        resource: r.name,
        reason: "includeEvents was false",
      })),
      ...(deps.archive ? [] : [{ resource: COLD_AUDIT_FILE, reason: "no cold audit archive configured" }]),
      ...(deps.media ? [] : [{ resource: "media", reason: "no media bucket configured" }]),
    ],
    notAlwaysExported: EXCLUDED_TABLES,
  };
  const manifestBytes = new TextEncoder().encode(`${JSON.stringify(manifest, null, 2)}\n`);
  await out.write(tarHeader("manifest.json", manifestBytes.length, mtime));
  await out.write(manifestBytes);
  await out.write(tarPadding(manifestBytes.length));
  await out.write(tarEnd());
  const archive = await out.complete();
  if (archive.size % BLOCK !== 0) throw new Error("tar archive is not block-aligned");

  run.state.uploadId = null;
  nextStep(run);
  const expiresAt = new Date(deps.now.getTime() + EXPORT_OBJECT_DAYS * 86_400_000);
  await save(run, {
    status: "succeeded",
    object_key: key,
    size_bytes: archive.size,
    sha256: archive.sha256,
    finished_at: deps.now,
    expires_at: expiresAt,
    error_code: null,
  });
  await inOrg(deps.db, job.org_id, (tx) =>
    tx
      .insertInto("audit_log")
      .values({
        id: newId("aud"),
        org_id: job.org_id,
        occurred_at: deps.now,
        actor_type: "system",
        actor_id: "exporter",
        action: "org_export.completed",
        resource_type: "org_export",
        resource_id: job.id,
        request_id: null,
        changes: JSON.stringify({ after: { status: "succeeded", sizeBytes: archive.size } }),
      })
      .execute(),
  );
  await deleteParts(deps.exports, job.org_id, job.id);
}

/** Removes an export's working parts (and media copies), keeping the archive. */
export async function deleteParts(store: ObjectStore, orgId: string, exportId: string): Promise<void> {
  for (const sub of ["parts/", "media/"]) await deletePrefix(store, `${exportPrefix(orgId, exportId)}${sub}`);
}

/** The export's org is not marked for deletion (a condition on org_exports). */
const orgNotMarked = ({ not, exists, selectFrom }: ExpressionBuilder<DB, "org_exports">) =>
  not(
    exists(
      selectFrom("organizations")
        .select("organizations.id")
        .whereRef("organizations.id", "=", "org_exports.org_id")
        .where("organizations.deleted_at", "is not", null),
    ),
  );

/**
 * The export bucket for one run, refusing writes once the run has lasted half its lease. An org deletion
 * sweeps the org's export objects only when no export of the org has held its lease for a lease's length
 * (functions/lifecycle/cascade.ts), so a runner that is still writing must be well inside its own: with
 * this, no part lands under the prefix after the sweep, even from a run that was slow to start.
 */
function writesUntil(store: ObjectStore, deadline: number, exportId: string): ObjectStore {
  const check = () => {
    if (performance.now() > deadline) throw new LeaseLost(`export ${exportId}: the run outlived its lease`);
  };
  return {
    ...store,
    async put(key, body, type) {
      check();
      return store.put(key, body, type);
    },
    async startMultipart(key, type) {
      check();
      return store.startMultipart(key, type);
    },
    async uploadPart(key, uploadId, n, body) {
      check();
      return store.uploadPart(key, uploadId, n, body);
    },
    async completeMultipart(key, uploadId, parts) {
      check();
      return store.completeMultipart(key, uploadId, parts);
    },
  };
}

/** Takes the export for this run if nobody else holds it (its heartbeat is older than the lease). */
async function claim(deps: ExportDeps, id: string, orgId: string): Promise<ExportRow | undefined> {
  const staleBefore = new Date(deps.now.getTime() - deps.limits.leaseSeconds * 1000);
  return inOrg(deps.db, orgId, (tx) =>
    tx
      .updateTable("org_exports")
      .set({
        status: "running",
        heartbeat_at: deps.now,
        started_at: sql<Date>`coalesce(started_at, ${deps.now})`,
      })
      .where("id", "=", id)
      .where("status", "in", ["queued", "running"])
      .where((eb) => eb.or([eb("heartbeat_at", "is", null), eb("heartbeat_at", "<", staleBefore)]))
      // An org marked for deletion is exported no further: a step would write parts (end users' events)
      // under the org's export prefix behind the deletion's cascade. Its job row goes with the org.
      .where(orgNotMarked)
      .returning([
        "id",
        "org_id",
        "status",
        "project_ids",
        "include_events",
        "state",
        "attempts",
        "heartbeat_at",
        "created_at",
      ])
      .executeTakeFirst(),
  ) as Promise<ExportRow | undefined>;
}

/**
 * Advances one export by at most `limits.stepsPerRun` steps. Returns the steps taken and whether it
 * finished. A failing run leaves the export for a later run (after retryBackoffSeconds); after maxAttempts
 * failed runs without progress it is marked failed (error_code export_failed) and the expiry job deletes
 * its objects.
 */
export async function advanceExport(
  deps: ExportDeps,
  id: string,
  orgId: string,
): Promise<{ steps: number; done: boolean; failed?: boolean }> {
  const job = await claim(deps, id, orgId);
  if (!job) return { steps: 0, done: false };
  const deadline = performance.now() + (deps.limits.leaseSeconds * 1000) / 2;
  const run: Runner = {
    deps: { ...deps, exports: writesUntil(deps.exports, deadline, job.id) },
    job,
    progressed: false,
    state: {
      ...job.state,
      step: job.state.step ?? 0,
      files: job.state.files ?? {},
      media: job.state.media ?? { objects: 0, bytes: 0, missing: 0 },
    },
  };
  const plan = planOf(job);
  let steps = 0;
  try {
    while (steps < deps.limits.stepsPerRun) {
      const step = plan[run.state.step];
      if (!step) return { steps, done: true };
      steps += 1;
      if (step.kind === "table") await tableStep(run, step.resource);
      else if (step.kind === "cold_audit") await coldAuditStep(run);
      else if (step.kind === "media") await mediaStep(run);
      else {
        await assembleStep(run);
        return { steps, done: true };
      }
      await save(run);
    }
    // The run's budget is spent: let the next run take the export at once rather than after the lease.
    await inOrg(deps.db, job.org_id, (tx) =>
      tx
        .updateTable("org_exports")
        .set({ heartbeat_at: null })
        .where("id", "=", job.id)
        .where("status", "=", "running")
        .where("heartbeat_at", "=", deps.now)
        .execute(),
    );
    return { steps, done: false };
  } catch (error) {
    if (error instanceof LeaseLost) return { steps, done: false };
    // Failures count from the last recorded step: one in this run after progress is the first.
    const attempts = run.progressed ? 1 : job.attempts + 1;
    const failed = attempts >= deps.limits.maxAttempts;
    const backoff = deps.limits.retryBackoffSeconds;
    const waitSeconds = backoff[Math.min(attempts, backoff.length) - 1] ?? 0;
    await inOrg(deps.db, job.org_id, (tx) =>
      tx
        .updateTable("org_exports")
        .set({
          attempts,
          // The retry waits: the export counts as held until now + waitSeconds (claim takes it once its
          // heartbeat is a lease old), so a storage outage is not retried every minute until it fails.
          heartbeat_at: failed
            ? null
            : new Date(deps.now.getTime() + (waitSeconds - deps.limits.leaseSeconds) * 1000),
          // A failed export keeps no keyset position (a cursor can hold a user id, and a job row that stays
          // for the record must not be a copy of personal data the deletion jobs do not know about), and its
          // objects are left to the expiry job, which deletes them and retries until storage answers: the
          // failure is often storage's own.
          ...(failed
            ? {
                status: "failed",
                error_code: "export_failed",
                finished_at: deps.now,
                state: JSON.stringify({
                  ...job.state,
                  uploadId: run.state.uploadId ?? null,
                  cursor: null,
                  cleanup: true,
                }),
              }
            : {}),
        })
        .where("id", "=", job.id)
        // Withdrawn meanwhile (a deletion request expired it): it stays so.
        .where("status", "=", "running")
        .where("heartbeat_at", "=", deps.now)
        .execute(),
    );
    if (failed) return { steps, done: true, failed: true };
    // The export's id on every failure, so a log line says whose export failed.
    throw new Error(`export ${job.id}: ${error instanceof Error ? error.message : String(error)}`, {
      cause: error,
    });
  }
}

/** The Cron job's work: every due export (oldest first), each advanced by one run's worth of steps. */
export async function runExports(
  deps: ExportDeps,
): Promise<{ counts: Record<string, number>; more: boolean }> {
  const due = await sql<{ id: string; org_id: string }>`select * from due_org_exports(${10})`.execute(
    deps.db,
  );
  const counts = { exports_advanced: 0, export_steps: 0, exports_finished: 0, exports_failed: 0 };
  let more = false;
  for (const job of due.rows) {
    const result = await advanceExport(deps, job.id, job.org_id);
    if (result.steps > 0) counts.exports_advanced += 1;
    counts.export_steps += result.steps;
    if (result.done && !result.failed) counts.exports_finished += 1;
    if (result.failed) counts.exports_failed += 1;
    if (!result.done) more = true;
  }
  return { counts, more };
}
