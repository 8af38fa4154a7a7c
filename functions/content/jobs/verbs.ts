import type { Keyring } from "../../../shared/destinations";
import { ApiError } from "../../../shared/errors";
import { newId } from "../../../shared/ids";
import { audit } from "../../audit/writeAudit";
import { found, type VerbContext } from "../../context";
import { type KeyringSource, keyringOf } from "../../destinations/verbs";
import { requireLayer } from "../../projects/layers";
import { visibleProject } from "../../projects/verbs";
import { emitWebhookEvent } from "../../webhooks/outbox";
import { type ContainerView, getContainerOfJob } from "../containers";
import { type ResolvedStorage, resolveStorage, StorageModeError, type StorageRequest } from "../storageMode";
import { type JobRequest, sealJobRequest } from "./request";
import { containersOfProject, finishJob, getJob, insertJob, type JobView, listJobs } from "./store";

// Content jobs as the partner API offers them. The verb owns the rules: the project is visible and not
// archived, its content layer is on, the storage matrix holds (resolveStorage), a storage config is the
// org's, references are containers of the same project. The request is sealed before it reaches the row;
// the audit row records kind, storage and counts, never the brief.

export interface CreateJobInput extends JobRequest {
  storage: StorageRequest;
  async: boolean;
}

/** The matrix, as the API's 400: storage_mode_not_allowed naming the rule. */
export function resolveJobStorage(storage: StorageRequest, isAsync: boolean): ResolvedStorage {
  try {
    return resolveStorage(storage, isAsync);
  } catch (error) {
    if (error instanceof StorageModeError) {
      throw new ApiError("storage_mode_not_allowed", error.message, {
        details: [
          { field: "storage", storage: typeof storage === "object" ? "{ id }" : storage, async: isAsync },
        ],
      });
    }
    throw error;
  }
}

/**
 * Checks and records a new job (in the caller's transaction): queued with its request sealed (cloud, own),
 * or running with no request at all (none: generated in memory by the caller right after).
 */
export async function createContentJob(
  ctx: VerbContext,
  projectId: string,
  input: CreateJobInput,
  keys: KeyringSource,
): Promise<JobView> {
  const storage = resolveJobStorage(input.storage, input.async);
  const project = await visibleProject(ctx, projectId);
  if (project.archivedAt) {
    throw new ApiError("project_archived", `Project ${projectId} is archived: it takes no new content jobs.`);
  }
  await requireLayer(ctx.db, projectId, "content");
  if (storage.mode === "own") {
    const configId = storage.storageConfigId ?? "";
    // For share: a delete of the config (which locks it for update and counts open jobs) cannot cross us.
    const config = await ctx.db
      .selectFrom("storage_configs")
      .select("id")
      .where("id", "=", configId)
      .forShare()
      .executeTakeFirst();
    found(config, `No storage config ${configId}.`);
  }
  const references = [...new Set(input.references ?? [])];
  if (references.length > 0) {
    const known = new Set((await containersOfProject(ctx.db, projectId, references)).map((c) => c.id));
    const missing = references.filter((id) => !known.has(id));
    if (missing.length > 0) {
      throw new ApiError(
        "not_found",
        `No container ${missing.join(", ")} in project ${projectId}: references must be containers of the same project.`,
        { details: missing.map((id) => ({ field: "references", id })) },
      );
    }
  }
  const keyring: Keyring | undefined = storage.mode === "none" ? undefined : keyringOf(ctx, keys);
  const jobId = newId("cjob");
  const request: JobRequest = {
    kind: input.kind,
    brief: input.brief,
    ...(input.product ? { product: input.product } : {}),
    ...(references.length ? { references } : {}),
    ...(input.frames === undefined ? {} : { frames: input.frames }),
  };
  const sealed = keyring ? await sealJobRequest(keyring, request, { orgId: ctx.orgId, jobId }) : null;
  const job = await insertJob(ctx.db, {
    id: jobId,
    orgId: ctx.orgId,
    projectId,
    kind: input.kind,
    storageMode: storage.mode,
    storageConfigId: storage.storageConfigId ?? null,
    async: storage.async,
    sealed,
    metadata: { references: references.length },
    requestId: ctx.requestId,
    now: ctx.now,
  });
  await audit(
    ctx,
    "content_job.created",
    { type: "content_job", id: jobId },
    {
      after: {
        projectId,
        kind: job.kind,
        storageMode: job.storageMode,
        storageConfigId: job.storageConfigId,
        async: job.async,
        references: references.length,
      },
    },
  );
  return job;
}

/**
 * A job that could not be started (the Workflow or the content Worker unreachable): failed with `code`,
 * request cleared, content_job.failed emitted, so nothing waits for a run that will never come.
 */
export async function failUnstartedJob(ctx: VerbContext, job: JobView, code: string): Promise<void> {
  const finished = await finishJob(
    ctx.db,
    job.id,
    { status: "failed", errorCode: code, metadata: {} },
    ctx.now,
  );
  if (!finished) return;
  await emitWebhookEvent(ctx.db, {
    orgId: ctx.orgId,
    projectId: job.projectId,
    type: "content_job.failed",
    payload: {
      contentJobId: job.id,
      projectId: job.projectId,
      kind: job.kind,
      status: "failed",
      storageMode: job.storageMode,
      errorCode: code,
      link: `/v1/projects/${job.projectId}/content-jobs/${job.id}`,
    },
    now: ctx.now,
  });
}

export async function getProjectJob(
  ctx: VerbContext,
  projectId: string,
  jobId: string,
): Promise<{ job: JobView; container: ContainerView | null }> {
  await visibleProject(ctx, projectId);
  const job = found(await getJob(ctx.db, jobId, projectId), `No content job ${jobId}.`);
  const container = job.status === "succeeded" ? await getContainerOfJob(ctx.db, jobId) : null;
  return { job, container };
}

export async function listProjectJobs(
  ctx: VerbContext,
  projectId: string,
  page: { limit: number; startingAfter?: string | undefined },
): Promise<{ data: { job: JobView; containerId: string | null }[]; hasMore: boolean }> {
  await visibleProject(ctx, projectId);
  const { data, hasMore } = await listJobs(ctx.db, projectId, page);
  const ids = data.filter((j) => j.status === "succeeded").map((j) => j.id);
  const containers =
    ids.length === 0
      ? []
      : await ctx.db
          .selectFrom("content_containers")
          .select(["id", "job_id"])
          .where("job_id", "in", ids)
          .execute();
  const byJob = new Map(containers.map((c) => [c.job_id, c.id]));
  return { data: data.map((job) => ({ job, containerId: byJob.get(job.id) ?? null })), hasMore };
}

/** A job as the API shows it: never a brief, a prompt or a credential. */
export function contentJobJson(job: JobView, containerId: string | null) {
  const m = job.metadata;
  const media =
    typeof m.sha256 === "string" && typeof m.sizeBytes === "number" && typeof m.mediaType === "string"
      ? { sizeBytes: m.sizeBytes, sha256: m.sha256, mediaType: m.mediaType }
      : null;
  return {
    id: job.id,
    object: "content_job" as const,
    projectId: job.projectId,
    kind: job.kind,
    status: job.status,
    storage: { mode: job.storageMode, storageConfigId: job.storageConfigId },
    async: job.async,
    provider: job.provider,
    model: job.model,
    errorCode: job.errorCode,
    attempts: job.attempts,
    media,
    containerId,
    createdAt: job.createdAt.toISOString(),
    startedAt: job.startedAt?.toISOString() ?? null,
    finishedAt: job.finishedAt?.toISOString() ?? null,
  };
}
