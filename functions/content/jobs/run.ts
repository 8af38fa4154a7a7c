import { type Db, withTenant } from "../../../shared/db";
import type { Keyring } from "../../../shared/destinations";
import { TokenDecryptError } from "../../destinations/crypto";
import type { ObjectStore } from "../../storage/objectStore";
import { loadStorageTarget } from "../../storageConfigs/store";
import { emitWebhookEvent } from "../../webhooks/outbox";
import { type AgentFetcher, requestGeneration } from "../agentProtocol";
import { checkEndpointUrl } from "../endpointUrl";
import { buildPrompt, PROMPT_INPUT_LIMITS, PromptError } from "../prompt";
import { type GenerateRequest, ProviderError } from "../providers/types";
import { JobError } from "./errors";
import type { PartnerPut } from "./partnerBucket";
import { type JobRequest, openJobRequest } from "./request";
import {
  containerIdFor,
  containersOfProject,
  finishJob,
  hasContainer,
  insertContainerOnce,
  type JobView,
  loadJobForRun,
  type MediaFacts,
  markRunning,
  type StorageMode,
} from "./store";

// The steps of a content job, as plain functions the content Worker's Workflow calls one per step.do (and
// its in-memory path for `storage: false`). What a step returns is persisted by the Workflow engine, so
// no step returns request text, prompt text or media bytes: only ids, keys, sizes, hashes and types. The
// prompt is therefore rebuilt where it is used (generate), from the sealed request, which is the one place
// the brief lives while the job runs. Every step can run again after a crash and does the same thing:
// staging and final object keys, and the container id, are derived from the job id. Steps: validate (and
// build the prompt), generate (for `storage: true` straight to the final key), store (`storage: { id }`
// only), record.

export interface RunDeps {
  /** Logged in as layers_content; every step opens its own tenant transaction. */
  db: Db;
  /** Our media bucket: staging objects and `storage: true` media. */
  media: ObjectStore;
  mediaBucket: string;
  agent: AgentFetcher;
  keyring: Keyring;
  putToPartner: PartnerPut;
  /** Storage configs may name plain-http loopback endpoints (dev and tests only). */
  allowLocalHttp: boolean;
  partnerTimeoutMs: number;
  now: () => Date;
}

/** Workflow params: ids only. */
export interface JobRef {
  jobId: string;
  orgId: string;
  projectId: string;
}

export interface ValidatedJob {
  state: "run" | "finished";
  kind: JobView["kind"];
  storageMode: StorageMode;
  storageConfigId: string | null;
}

export interface GeneratedRef extends MediaFacts {
  /** Where generate wrote the bytes in our bucket. */
  stagingKey: string;
  /**
   * `storage: true`: stagingKey is already the media's final key (derived from the job id, so a generate
   * run again overwrites the same object) and there is nothing to store. Absent: a staging object.
   */
  inPlace?: boolean;
}

export interface StoredRef {
  bucket: string;
  objectKey: string;
}

/**
 * Where generated media for a partner's bucket waits between generate and store (our bucket). Laid out by
 * org and project, as media are, so project and org deletion sweep it (functions/lifecycle/objects.ts);
 * the content-retention job deletes what a finished job left (functions/retention/contentStaging.ts).
 */
export function stagingKey(ref: JobRef): string {
  return `staging/${ref.orgId}/${ref.projectId}/${ref.jobId}`;
}

/** `storage: true`: the media's final key in our bucket. */
export function cloudMediaKey(ref: JobRef): string {
  return `media/${ref.orgId}/${ref.projectId}/${containerIdFor(ref.jobId)}`;
}

const EXTENSIONS: Record<string, string> = {
  "text/plain": ".txt",
  "image/png": ".png",
  "application/vnd.layers.storyboard+json": ".json",
};

/** `storage: { id }`: the key in the partner's bucket, under the config's prefix, named for people. */
export function partnerMediaKey(prefix: string, ref: JobRef, mediaType: string): string {
  const base = mediaType.split(";")[0]?.trim() ?? "";
  const ext = Object.hasOwn(EXTENSIONS, base) ? EXTENSIONS[base] : "";
  return `${prefix}${ref.projectId}/${containerIdFor(ref.jobId)}${ext}`;
}

const jobLink = (ref: JobRef) => `/v1/projects/${ref.projectId}/content-jobs/${ref.jobId}`;

/**
 * Step 1: the job exists and is open; it becomes running (one more attempt), in one transaction that also
 * reads its sealed request; then the prompt is built from it (in memory: references, if any, are read in a
 * second transaction), so a request that cannot make a prompt fails here. Returns no request or prompt text.
 */
export async function validateJob(deps: RunDeps, ref: JobRef): Promise<ValidatedJob> {
  const loaded = await withTenant(deps.db, ref.orgId, async (tx) => {
    const job = await loadJobForRun(tx, ref.jobId);
    if (!job || job.projectId !== ref.projectId) {
      throw new JobError("job_not_found", `Content job ${ref.jobId} does not exist.`, false);
    }
    const out = { kind: job.kind, storageMode: job.storageMode, storageConfigId: job.storageConfigId };
    if (job.status === "succeeded" || job.status === "failed")
      return { validated: { state: "finished" as const, ...out }, sealed: null };
    if (!job.sealed) throw new JobError("request_missing", `Content job ${ref.jobId} has no request.`, false);
    await markRunning(tx, ref.jobId, deps.now());
    return { validated: { state: "run" as const, ...out }, sealed: job.sealed };
  });
  if (loaded.sealed) await promptFor(deps, ref, await openSealed(deps, ref, loaded.sealed));
  return loaded.validated;
}

/** The sealed request of an open job, opened (in memory only). */
async function openRequest(deps: RunDeps, ref: JobRef): Promise<JobRequest> {
  const sealed = await withTenant(
    deps.db,
    ref.orgId,
    async (tx) => (await loadJobForRun(tx, ref.jobId))?.sealed,
  );
  if (!sealed) throw new JobError("request_missing", `Content job ${ref.jobId} has no request.`, false);
  return openSealed(deps, ref, sealed);
}

async function openSealed(
  deps: RunDeps,
  ref: JobRef,
  sealed: { ciphertext: string; keyId: string },
): Promise<JobRequest> {
  try {
    return await openJobRequest(deps.keyring, sealed, { orgId: ref.orgId, jobId: ref.jobId });
  } catch (error) {
    if (error instanceof TokenDecryptError) {
      throw new JobError("request_unreadable", `The request of ${ref.jobId} cannot be decrypted.`, false);
    }
    throw error;
  }
}

/**
 * The prompt of a request: the brief, the product and the text of the referenced containers of the same
 * project (copy kept in our bucket; other kinds and other storage add nothing a text model could read).
 */
export async function promptFor(deps: RunDeps, ref: JobRef, request: JobRequest): Promise<GenerateRequest> {
  const references = request.references ?? [];
  // No references (the usual job): no transaction at all.
  const containers =
    references.length === 0
      ? []
      : await withTenant(deps.db, ref.orgId, (tx) => containersOfProject(tx, ref.projectId, references));
  const earlierCreative: { containerId: string; projectId: string; kind: JobView["kind"]; text: string }[] =
    [];
  for (const c of containers) {
    if (c.kind !== "copy" || c.storageMode !== "cloud" || c.bucket !== deps.mediaBucket) continue;
    const bytes = await deps.media.get(c.objectKey);
    const text = bytes
      ? new TextDecoder().decode(bytes).trim().slice(0, PROMPT_INPUT_LIMITS.creativeText)
      : "";
    if (text) earlierCreative.push({ containerId: c.id, projectId: c.projectId, kind: c.kind, text });
  }
  try {
    return buildPrompt({
      projectId: ref.projectId,
      kind: request.kind,
      ...(request.frames === undefined ? {} : { frames: request.frames }),
      brief: request.brief,
      ...(request.product ? { product: request.product } : {}),
      ...(earlierCreative.length ? { earlierCreative } : {}),
    });
  } catch (error) {
    if (error instanceof PromptError) throw new JobError(error.code, error.message, false);
    throw error;
  }
}

function providerFailure(error: unknown): never {
  if (error instanceof ProviderError) throw new JobError(error.code, error.message, error.retryable);
  throw error;
}

/**
 * Step 2: the agent makes the media. `storage: true`: it goes straight to its final key in our bucket (no
 * store step); otherwise it waits in our bucket under the staging key for the store step.
 */
export async function generateMedia(
  deps: RunDeps,
  ref: JobRef,
  job: Pick<ValidatedJob, "storageMode">,
): Promise<GeneratedRef> {
  const prompt = await promptFor(deps, ref, await openRequest(deps, ref));
  const out = await requestGeneration(deps.agent, prompt).catch(providerFailure);
  const inPlace = job.storageMode === "cloud";
  const key = inPlace ? cloudMediaKey(ref) : stagingKey(ref);
  try {
    await deps.media.put(key, out.media, out.mediaType);
  } catch {
    throw new JobError("storage_unavailable", "The media bucket did not take the object.");
  }
  return {
    stagingKey: key,
    ...(inPlace ? { inPlace } : {}),
    sizeBytes: out.media.length,
    sha256: out.sha256,
    mediaType: out.mediaType,
    provider: out.provider,
    model: out.model,
  };
}

/**
 * Step 3: the staged media in its final place — our bucket, or the partner's with its config. Nothing to do
 * (and no step run) when generate wrote it in place.
 */
export async function storeMedia(
  deps: RunDeps,
  ref: JobRef,
  job: ValidatedJob,
  generated: GeneratedRef,
): Promise<StoredRef> {
  if (generated.inPlace) return { bucket: deps.mediaBucket, objectKey: generated.stagingKey };
  const bytes = await deps.media.get(generated.stagingKey).catch(() => {
    throw new JobError("storage_unavailable", "The media bucket could not be read.");
  });
  if (!bytes) throw new JobError("staging_missing", `The staged media of ${ref.jobId} is gone.`, false);
  if (job.storageMode === "own") {
    const configId = job.storageConfigId ?? "";
    const target = await withTenant(deps.db, ref.orgId, (tx) =>
      loadStorageTarget(tx, ref.orgId, configId, deps.keyring),
    ).catch((error: unknown) => {
      if (error instanceof TokenDecryptError) {
        throw new JobError(
          "storage_secret_unreadable",
          `Storage config ${configId}: secret unreadable.`,
          false,
        );
      }
      throw error;
    });
    if (!target) throw new JobError("storage_config_not_found", `Storage config ${configId} is gone.`, false);
    const endpoint = checkEndpointUrl(target.endpoint, { allowLocalHttp: deps.allowLocalHttp });
    if (!endpoint.ok) throw new JobError("storage_endpoint_refused", endpoint.message, false);
    const objectKey = partnerMediaKey(target.prefix, ref, generated.mediaType);
    await deps.putToPartner(target, objectKey, bytes, generated.mediaType, deps.partnerTimeoutMs);
    return { bucket: target.bucket, objectKey };
  }
  const objectKey = cloudMediaKey(ref);
  try {
    await deps.media.put(objectKey, bytes, generated.mediaType);
  } catch {
    throw new JobError("storage_unavailable", "The media bucket did not take the object.");
  }
  return { bucket: deps.mediaBucket, objectKey };
}

/**
 * Step 4: the container, the job succeeded (request cleared) and content_job.succeeded, in one transaction;
 * then the staging object goes. Run again, it finds the container and the finished job and does nothing.
 */
export async function recordJob(
  deps: RunDeps,
  ref: JobRef,
  job: ValidatedJob,
  generated: GeneratedRef,
  stored: StoredRef,
): Promise<{ containerId: string }> {
  const now = deps.now();
  const containerId = await withTenant(deps.db, ref.orgId, async (tx) => {
    const storageMode = job.storageMode === "own" ? "own" : "cloud";
    const id = await insertContainerOnce(tx, {
      orgId: ref.orgId,
      jobId: ref.jobId,
      projectId: ref.projectId,
      kind: job.kind,
      storageMode,
      storageConfigId: storageMode === "own" ? job.storageConfigId : null,
      bucket: stored.bucket,
      objectKey: stored.objectKey,
      media: generated,
      now,
    });
    const { stagingKey: _staging, ...media } = generated;
    const finished = await finishJob(
      tx,
      ref.jobId,
      { status: "succeeded", media, metadata: mediaMetadata(media) },
      now,
    );
    if (finished) {
      await emitWebhookEvent(tx, {
        orgId: ref.orgId,
        projectId: ref.projectId,
        type: "content_job.succeeded",
        payload: {
          contentJobId: ref.jobId,
          projectId: ref.projectId,
          kind: job.kind,
          status: "succeeded",
          storageMode: job.storageMode,
          containerId: id,
          link: jobLink(ref),
        },
        now,
      });
    }
    return id;
  });
  if (!generated.inPlace) await deps.media.delete(generated.stagingKey).catch(() => undefined);
  return { containerId };
}

/** Non-sensitive facts about the media, kept on the job. */
function mediaMetadata(media: MediaFacts): Record<string, unknown> {
  return { sizeBytes: media.sizeBytes, sha256: media.sha256, mediaType: media.mediaType };
}

/**
 * The job gave up: failed with its code, request cleared, content_job.failed emitted (once), the staging
 * object deleted, and for `storage: true` the object a generate may have written in place, unless a
 * container holds it (a job that succeeded before a later step failed keeps its media). Safe to run again.
 */
export async function failJob(
  deps: Pick<RunDeps, "db" | "now"> & { media?: ObjectStore | undefined },
  ref: JobRef,
  job: Pick<ValidatedJob, "kind" | "storageMode"> | null,
  errorCode: string,
): Promise<void> {
  const now = deps.now();
  const orphan = await withTenant(deps.db, ref.orgId, async (tx) => {
    const current = job ?? (await loadJobForRun(tx, ref.jobId));
    if (!current) return false;
    const kept = current.storageMode !== "cloud" || (await hasContainer(tx, ref.jobId));
    const finished = await finishJob(tx, ref.jobId, { status: "failed", errorCode, metadata: {} }, now);
    if (!finished) return !kept;
    await emitWebhookEvent(tx, {
      orgId: ref.orgId,
      projectId: ref.projectId,
      type: "content_job.failed",
      payload: {
        contentJobId: ref.jobId,
        projectId: ref.projectId,
        kind: current.kind,
        status: "failed",
        storageMode: current.storageMode,
        errorCode,
        link: jobLink(ref),
      },
      now,
    });
    return !kept;
  });
  // Best effort: what a failed delete leaves, the content-retention job's staging sweep deletes later;
  // an orphan under media/ goes with the project's or org's deletion.
  await deps.media?.delete(stagingKey(ref)).catch(() => undefined);
  if (orphan) await deps.media?.delete(cloudMediaKey(ref)).catch(() => undefined);
}

/**
 * `storage: false`: generate in memory and hand the bytes back; nothing is stored but the job's metadata.
 * The request never reaches a row (it arrives with the call). Finishes the job either way.
 */
export async function generateInMemory(
  deps: RunDeps,
  ref: JobRef,
  request: JobRequest,
): Promise<{ media: Uint8Array; facts: MediaFacts }> {
  const job = { kind: request.kind, storageMode: "none" as const };
  try {
    const prompt = await promptFor(deps, ref, request);
    const out = await requestGeneration(deps.agent, prompt).catch(providerFailure);
    const facts: MediaFacts = {
      sizeBytes: out.media.length,
      sha256: out.sha256,
      mediaType: out.mediaType,
      provider: out.provider,
      model: out.model,
    };
    const now = deps.now();
    await withTenant(deps.db, ref.orgId, async (tx) => {
      if (
        !(await finishJob(
          tx,
          ref.jobId,
          { status: "succeeded", media: facts, metadata: mediaMetadata(facts) },
          now,
        ))
      ) {
        throw new JobError("job_not_open", `Content job ${ref.jobId} is not running.`, false);
      }
      await emitWebhookEvent(tx, {
        orgId: ref.orgId,
        projectId: ref.projectId,
        type: "content_job.succeeded",
        payload: {
          contentJobId: ref.jobId,
          projectId: ref.projectId,
          kind: request.kind,
          status: "succeeded",
          storageMode: "none",
          containerId: null,
          link: jobLink(ref),
        },
        now,
      });
    });
    return { media: out.media, facts };
  } catch (error) {
    const code = error instanceof JobError ? error.code : "internal_error";
    if (code !== "job_not_open") await failJob(deps, ref, job, code);
    throw error instanceof JobError ? error : new JobError("internal_error", "Generation failed.", false);
  }
}
