import { ApiError } from "../../shared/errors";
import type { Logger } from "../../shared/logger";
import { audit } from "../audit/writeAudit";
import { found, type VerbContext } from "../context";
import { type KeyringSource, keyringOf, readingTokens } from "../destinations/verbs";
import { visibleProject } from "../projects/verbs";
import type { ObjectStore } from "../storage/objectStore";
import { loadStorageTarget, type StorageTarget } from "../storageConfigs/store";
import { type ContainerView, deleteContainerRow, getContainer, listContainers } from "./containers";

// Content containers through the partner API: list, get (with a signed, expiring download URL) and delete
// (the object first, then the row). Reading and deleting work whatever the project's content layer says:
// switching the layer off stops generation, not access to what was generated.

/** How long a download URL works: long enough to start a download, short enough that a leaked URL dies. */
export const CONTAINER_URL_SECONDS = 900;

/** The stores a container lives in. */
export interface ContainerStorage {
  /** Our media bucket, or undefined where object storage is not configured (answers 503). */
  media: ObjectStore | undefined;
  /** A store for a partner's bucket `bucket`, with its config's credentials. */
  partner(target: StorageTarget, bucket: string): ObjectStore;
  /** The keyring the partner's secret is sealed with. */
  keys: KeyringSource;
}

/** A container as the API shows it and as its audit rows record it (no URL: that is per request). */
export function containerJson(v: ContainerView) {
  return {
    id: v.id,
    object: "content_container" as const,
    projectId: v.projectId,
    jobId: v.jobId,
    kind: v.kind,
    storageMode: v.storageMode,
    storageConfigId: v.storageConfigId,
    location: { bucket: v.bucket, key: v.objectKey },
    sizeBytes: v.sizeBytes,
    sha256: v.sha256,
    mediaType: v.mediaType,
    provider: v.provider,
    model: v.model,
    createdAt: v.createdAt.toISOString(),
    expiresAt: v.expiresAt?.toISOString() ?? null,
  };
}

export interface ContainerDownload {
  url: string | null;
  expiresAt: string | null;
  /**
   * Why there is no URL: the partner deleted the storage config the object was written with, or the answer
   * is a stored idempotent replay (a signed URL is a credential: it is never stored; GET for a fresh one).
   */
  unavailableReason: "storage_config_deleted" | "idempotent_replay" | null;
}

/** What a stored idempotent replay holds in place of a download. */
export const REPLAY_DOWNLOAD: ContainerDownload = {
  url: null,
  expiresAt: null,
  unavailableReason: "idempotent_replay",
};

/** A container with its download, as every API answer that shows one (container routes, content jobs). */
export function containerWithDownload(v: ContainerView, download: ContainerDownload) {
  return { ...containerJson(v), download };
}

const noContainer = (id: string) => `No content container ${id}.`;

const EXTENSIONS: Record<string, string> = {
  "image/png": "png",
  "text/plain": "txt",
  "application/json": "json",
  "application/vnd.layers.storyboard+json": "json",
};

function downloadName(v: ContainerView): string {
  const base = v.mediaType.split(";")[0]?.trim() ?? "";
  return `${v.id}.${Object.hasOwn(EXTENSIONS, base) ? EXTENSIONS[base] : "bin"}`;
}

export async function listProjectContainers(
  ctx: VerbContext,
  projectId: string,
  page: { limit: number; startingAfter?: string | undefined; kind?: ContainerView["kind"] | undefined },
) {
  await visibleProject(ctx, projectId);
  return listContainers(ctx.db, projectId, page);
}

function unavailable(log: Logger, error: unknown, what: string): ApiError {
  log.error("object storage unavailable", { what, error });
  return new ApiError("storage_unavailable", `Object storage did not answer (${what}); retry.`);
}

/** The partner's config for an own-bucket container, secret decrypted, or null once it was deleted. */
async function partnerTarget(
  ctx: VerbContext,
  v: ContainerView,
  storage: ContainerStorage,
): Promise<StorageTarget | null> {
  if (v.storageConfigId === null) return null;
  const configId = v.storageConfigId;
  const keyring = keyringOf(ctx, storage.keys);
  return readingTokens(ctx, () => loadStorageTarget(ctx.db, ctx.orgId, configId, keyring));
}

/**
 * A download URL signed for CONTAINER_URL_SECONDS (presigning calls no server): our bucket, or the partner's
 * with its storage config's credentials (none once that config was deleted).
 */
export async function containerDownload(
  ctx: VerbContext,
  container: ContainerView,
  storage: ContainerStorage,
): Promise<ContainerDownload> {
  const expiresAt = new Date(ctx.now.getTime() + CONTAINER_URL_SECONDS * 1000).toISOString();
  let store: ObjectStore;
  if (container.storageMode === "cloud") {
    if (!storage.media) throw unavailable(ctx.log, "not configured", "media bucket");
    store = storage.media;
  } else {
    const target = await partnerTarget(ctx, container, storage);
    if (!target) return { url: null, expiresAt: null, unavailableReason: "storage_config_deleted" };
    store = storage.partner(target, container.bucket);
  }
  try {
    const url = await store.signedGetUrl(container.objectKey, CONTAINER_URL_SECONDS, {
      downloadName: downloadName(container),
    });
    return { url, expiresAt, unavailableReason: null };
  } catch (error) {
    throw unavailable(ctx.log, error, "signing");
  }
}

/** One container of a visible project, with a download URL. */
export async function getProjectContainer(
  ctx: VerbContext,
  projectId: string,
  containerId: string,
  storage: ContainerStorage,
): Promise<{ container: ContainerView; download: ContainerDownload }> {
  await visibleProject(ctx, projectId);
  const container = found(await getContainer(ctx.db, projectId, containerId), noContainer(containerId));
  return { container, download: await containerDownload(ctx, container, storage) };
}

/** Delete, step 1 (short transaction): the container and, for an own-bucket one, its bucket's config. */
export async function loadContainerDeletion(
  ctx: VerbContext,
  projectId: string,
  containerId: string,
  storage: ContainerStorage,
): Promise<{ container: ContainerView; store: ObjectStore | null }> {
  await visibleProject(ctx, projectId);
  const container = found(await getContainer(ctx.db, projectId, containerId), noContainer(containerId));
  if (container.storageMode === "cloud") {
    if (!storage.media) throw unavailable(ctx.log, "not configured", "media bucket");
    return { container, store: storage.media };
  }
  const target = await partnerTarget(ctx, container, storage);
  return { container, store: target ? storage.partner(target, container.bucket) : null };
}

/**
 * Delete, step 2 (no transaction): the object. A failure is 503 storage_unavailable and the row stays, so a
 * retry finishes the job (deleting a key that is already gone succeeds). An own-bucket container whose
 * config was deleted keeps its object: we no longer hold credentials for that bucket.
 */
export async function deleteContainerObject(
  log: Logger,
  loaded: { container: ContainerView; store: ObjectStore | null },
): Promise<{ container: ContainerView; objectDeleted: boolean }> {
  if (!loaded.store) return { container: loaded.container, objectDeleted: false };
  try {
    await loaded.store.delete(loaded.container.objectKey);
  } catch (error) {
    throw unavailable(log, error, "delete");
  }
  return { container: loaded.container, objectDeleted: true };
}

/** Delete, step 3 (short transaction): the row (and with it its place in library entries) and the audit row. */
export async function recordContainerDeletion(
  ctx: VerbContext,
  deleted: { container: ContainerView; objectDeleted: boolean },
): Promise<void> {
  await deleteContainerRow(ctx.db, deleted.container.id);
  await audit(
    ctx,
    "content_container.deleted",
    { type: "content_container", id: deleted.container.id },
    {
      before: { ...containerJson(deleted.container), objectDeleted: false },
      after: { objectDeleted: deleted.objectDeleted },
    },
  );
}
