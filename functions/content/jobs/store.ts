import { type Selectable, sql } from "kysely";
import type { Db } from "../../../shared/db";
import type { ContentProviderColumn } from "../../../shared/db/columnTypes";
import { newestFirstPage } from "../../../shared/db/newestFirstPage";
import type { ContentContainers, ContentJobs } from "../../../shared/db/types";
import { randomSuffix } from "./ids";

// content_jobs and content_containers as the API and the content Worker use them. Every function runs in
// the caller's tenant transaction (RLS scopes it to the org). Nothing here reads or writes a brief: the
// sealed request is the only form it takes in a row, and finishing a job clears it.

export type ContentKind = ContentJobs["kind"];
export type JobStatus = "queued" | "running" | "succeeded" | "failed";
export type StorageMode = "cloud" | "own" | "none";

/** A job as the API shows it and as the workflow reads its state (never the sealed request). */
export interface JobView {
  id: string;
  projectId: string;
  kind: ContentKind;
  status: JobStatus;
  storageMode: StorageMode;
  storageConfigId: string | null;
  async: boolean;
  provider: string | null;
  model: string | null;
  errorCode: string | null;
  attempts: number;
  metadata: Record<string, unknown>;
  createdAt: Date;
  startedAt: Date | null;
  finishedAt: Date | null;
}

const JOB_COLUMNS = [
  "id",
  "project_id",
  "kind",
  "status",
  "storage_mode",
  "storage_config_id",
  "async",
  "provider",
  "model",
  "error_code",
  "attempts",
  "metadata",
  "created_at",
  "started_at",
  "finished_at",
] as const;

type JobRow = Pick<Selectable<ContentJobs>, (typeof JOB_COLUMNS)[number]>;

function toJob(row: JobRow): JobView {
  return {
    id: row.id,
    projectId: row.project_id,
    kind: row.kind,
    status: row.status as JobStatus,
    storageMode: row.storage_mode as StorageMode,
    storageConfigId: row.storage_config_id,
    async: row.async,
    provider: row.provider,
    model: row.model,
    errorCode: row.error_code,
    attempts: row.attempts,
    metadata: row.metadata as Record<string, unknown>,
    createdAt: row.created_at,
    startedAt: row.started_at,
    finishedAt: row.finished_at,
  };
}

/** The container id of a job: derived, so a retried record step can only ever write the same row. */
export function containerIdFor(jobId: string): string {
  return `ctr_${randomSuffix(jobId)}`;
}

export interface NewJob {
  id: string;
  orgId: string;
  projectId: string;
  kind: ContentKind;
  storageMode: StorageMode;
  storageConfigId: string | null;
  async: boolean;
  /** Sealed request (queued jobs); null for storage:false, generated in memory and never stored. */
  sealed: { ciphertext: string; keyId: string } | null;
  metadata: Record<string, unknown>;
  requestId: string;
  now: Date;
}

export async function insertJob(db: Db, job: NewJob): Promise<JobView> {
  const row = await db
    .insertInto("content_jobs")
    .values({
      id: job.id,
      org_id: job.orgId,
      project_id: job.projectId,
      kind: job.kind,
      // storage:false jobs are generated right away in the request: running from the start.
      status: job.storageMode === "none" ? "running" : "queued",
      storage_mode: job.storageMode,
      storage_config_id: job.storageConfigId,
      async: job.async,
      request_ciphertext: job.sealed?.ciphertext ?? null,
      request_key_id: job.sealed?.keyId ?? null,
      metadata: JSON.stringify(job.metadata),
      request_id: job.requestId,
      created_at: job.now,
      started_at: job.storageMode === "none" ? job.now : null,
    })
    .returning(JOB_COLUMNS)
    .executeTakeFirstOrThrow();
  return toJob(row);
}

export async function getJob(db: Db, jobId: string, projectId?: string): Promise<JobView | null> {
  let q = db.selectFrom("content_jobs").select(JOB_COLUMNS).where("id", "=", jobId);
  if (projectId !== undefined) q = q.where("project_id", "=", projectId);
  const row = await q.executeTakeFirst();
  return row ? toJob(row) : null;
}

export async function listJobs(
  db: Db,
  projectId: string,
  page: { limit: number; startingAfter?: string | undefined },
): Promise<{ data: JobView[]; hasMore: boolean }> {
  const { rows, hasMore } = await newestFirstPage(
    db.selectFrom("content_jobs").select(JOB_COLUMNS).where("project_id", "=", projectId),
    {
      table: "content_jobs",
      time: "created_at",
      id: "id",
      cursorScope: { project_id: projectId },
      ...page,
    },
  );
  return { data: rows.map(toJob), hasMore };
}

/** The job and its sealed request, for the workflow (null when the job is gone). */
export async function loadJobForRun(
  db: Db,
  jobId: string,
): Promise<(JobView & { orgId: string; sealed: { ciphertext: string; keyId: string } | null }) | null> {
  const row = await db
    .selectFrom("content_jobs")
    .select([...JOB_COLUMNS, "org_id", "request_ciphertext", "request_key_id"])
    .where("id", "=", jobId)
    .executeTakeFirst();
  if (!row) return null;
  return {
    ...toJob(row),
    orgId: row.org_id,
    sealed:
      row.request_ciphertext && row.request_key_id
        ? { ciphertext: row.request_ciphertext, keyId: row.request_key_id }
        : null,
  };
}

/** queued → running (or a running job's next attempt): counts the attempt. */
export async function markRunning(db: Db, jobId: string, now: Date): Promise<void> {
  await db
    .updateTable("content_jobs")
    .set({
      status: "running",
      started_at: sql<Date>`coalesce(started_at, ${now}::timestamptz)`,
      attempts: sql<number>`attempts + 1`,
    })
    .where("id", "=", jobId)
    .where("status", "in", ["queued", "running"])
    .execute();
}

/** What the generate step learnt about the media: no byte of it, no prompt. */
export interface MediaFacts {
  sizeBytes: number;
  sha256: string;
  mediaType: string;
  provider: ContentProviderColumn;
  model: string;
}

export interface ContainerView {
  id: string;
  jobId: string | null;
  projectId: string;
  kind: ContentKind;
  storageMode: "cloud" | "own";
  storageConfigId: string | null;
  bucket: string;
  objectKey: string;
  sizeBytes: number;
  sha256: string;
  mediaType: string;
  provider: ContentProviderColumn;
  model: string;
  createdAt: Date;
}

const CONTAINER_COLUMNS = [
  "id",
  "job_id",
  "project_id",
  "kind",
  "storage_mode",
  "storage_config_id",
  "bucket",
  "object_key",
  "size_bytes",
  "sha256",
  "media_type",
  "provider",
  "model",
  "created_at",
] as const;

function toContainer(row: Pick<Selectable<ContentContainers>, (typeof CONTAINER_COLUMNS)[number]>) {
  return {
    id: row.id,
    jobId: row.job_id,
    projectId: row.project_id,
    kind: row.kind,
    storageMode: row.storage_mode as "cloud" | "own",
    storageConfigId: row.storage_config_id,
    bucket: row.bucket,
    objectKey: row.object_key,
    sizeBytes: Number(row.size_bytes),
    sha256: row.sha256,
    mediaType: row.media_type,
    provider: row.provider,
    model: row.model,
    createdAt: row.created_at,
  } satisfies ContainerView;
}

/** Containers among `ids` that belong to `projectId` (others, and other orgs' by RLS, are left out). */
export async function containersOfProject(
  db: Db,
  projectId: string,
  ids: readonly string[],
): Promise<ContainerView[]> {
  if (ids.length === 0) return [];
  const rows = await db
    .selectFrom("content_containers")
    .select(CONTAINER_COLUMNS)
    .where("project_id", "=", projectId)
    .where("id", "in", [...ids])
    .execute();
  return rows.map(toContainer);
}

export interface NewContainer {
  orgId: string;
  jobId: string;
  projectId: string;
  kind: ContentKind;
  storageMode: "cloud" | "own";
  storageConfigId: string | null;
  bucket: string;
  objectKey: string;
  media: MediaFacts;
  now: Date;
}

/**
 * The container of a job, written at most once: its id is derived from the job and job_id is unique, so a
 * record step that runs again after a crash (its first run committed, its result was never saved) finds
 * the row and writes nothing.
 */
/** Whether the job's container row exists (the record step committed). */
export async function hasContainer(db: Db, jobId: string): Promise<boolean> {
  const row = await db
    .selectFrom("content_containers")
    .select("id")
    .where("job_id", "=", jobId)
    .executeTakeFirst();
  return row !== undefined;
}

export async function insertContainerOnce(db: Db, c: NewContainer): Promise<string> {
  const id = containerIdFor(c.jobId);
  await db
    .insertInto("content_containers")
    .values({
      id,
      org_id: c.orgId,
      project_id: c.projectId,
      job_id: c.jobId,
      kind: c.kind,
      storage_mode: c.storageMode,
      storage_config_id: c.storageConfigId,
      bucket: c.bucket,
      object_key: c.objectKey,
      size_bytes: c.media.sizeBytes,
      sha256: c.media.sha256,
      media_type: c.media.mediaType,
      provider: c.media.provider,
      model: c.media.model,
      created_at: c.now,
    })
    .onConflict((oc) => oc.column("id").doNothing())
    .execute();
  return id;
}

/**
 * Finishes an open job: succeeded (provider, model, media facts) or failed (error code). Clears the sealed
 * request in the same statement. Returns false when the job was already finished (a step run again): the
 * caller then emits no second webhook.
 */
export async function finishJob(
  db: Db,
  jobId: string,
  outcome:
    | { status: "succeeded"; media: MediaFacts; metadata: Record<string, unknown> }
    | { status: "failed"; errorCode: string; metadata: Record<string, unknown> },
  now: Date,
): Promise<boolean> {
  const result = await db
    .updateTable("content_jobs")
    .set({
      status: outcome.status,
      finished_at: now,
      request_ciphertext: null,
      request_key_id: null,
      metadata: JSON.stringify(outcome.metadata),
      ...(outcome.status === "succeeded"
        ? {
            provider: outcome.media.provider,
            model: outcome.media.model,
            error_code: null,
          }
        : { error_code: outcome.errorCode }),
    })
    .where("id", "=", jobId)
    .where("status", "in", ["queued", "running"])
    .executeTakeFirst();
  return Number(result.numUpdatedRows) > 0;
}
