import type { Selectable } from "kysely";
import type { Db } from "../../shared/db";
import type { ContentKindColumn as ContentKind } from "../../shared/db/columnTypes";
import { newestFirstPage } from "../../shared/db/newestFirstPage";
import type { ContentContainers } from "../../shared/db/types";
import { daysBefore, RETENTION } from "../retention/policy";

// content_containers as the partner API reads and deletes them. The content workflow writes them (one per
// job); here they are listed, shown, deleted, and given their expiry when their project is archived.

export interface ContainerView {
  id: string;
  projectId: string;
  jobId: string | null;
  kind: ContentKind;
  storageMode: "cloud" | "own";
  storageConfigId: string | null;
  bucket: string;
  objectKey: string;
  sizeBytes: number;
  sha256: string;
  mediaType: string;
  provider: string;
  model: string;
  createdAt: Date;
  expiresAt: Date | null;
}

export const CONTAINER_COLUMNS = [
  "id",
  "project_id",
  "job_id",
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
  "expires_at",
] as const;

type ContainerRow = Pick<Selectable<ContentContainers>, (typeof CONTAINER_COLUMNS)[number]>;

export function toContainer(row: ContainerRow): ContainerView {
  return {
    id: row.id,
    projectId: row.project_id,
    jobId: row.job_id,
    kind: row.kind,
    storageMode: row.storage_mode,
    storageConfigId: row.storage_config_id,
    bucket: row.bucket,
    objectKey: row.object_key,
    sizeBytes: Number(row.size_bytes),
    sha256: row.sha256,
    mediaType: row.media_type,
    provider: row.provider,
    model: row.model,
    createdAt: row.created_at,
    expiresAt: row.expires_at,
  };
}

export async function listContainers(
  db: Db,
  projectId: string,
  page: { limit: number; startingAfter?: string | undefined; kind?: ContentKind | undefined },
): Promise<{ data: ContainerView[]; hasMore: boolean }> {
  let query = db
    .selectFrom("content_containers")
    .select(CONTAINER_COLUMNS)
    .where("project_id", "=", projectId);
  if (page.kind) query = query.where("kind", "=", page.kind);
  const { rows, hasMore } = await newestFirstPage(query, {
    table: "content_containers",
    time: "created_at",
    id: "id",
    limit: page.limit,
    startingAfter: page.startingAfter,
    cursorScope: { project_id: projectId },
  });
  return { data: rows.map(toContainer), hasMore };
}

export async function getContainer(
  db: Db,
  projectId: string,
  containerId: string,
): Promise<ContainerView | null> {
  const row = await db
    .selectFrom("content_containers")
    .select(CONTAINER_COLUMNS)
    .where("id", "=", containerId)
    .where("project_id", "=", projectId)
    .executeTakeFirst();
  return row ? toContainer(row) : null;
}

/** The container a content job wrote, if any (at most one: content_containers.job_id is unique). */
export async function getContainerOfJob(db: Db, jobId: string): Promise<ContainerView | null> {
  const row = await db
    .selectFrom("content_containers")
    .select(CONTAINER_COLUMNS)
    .where("job_id", "=", jobId)
    .executeTakeFirst();
  return row ? toContainer(row) : null;
}

/** The containers of the org (RLS) among `ids`, in no particular order. */
export async function containersOfOrg(db: Db, ids: readonly string[]): Promise<ContainerView[]> {
  if (ids.length === 0) return [];
  const rows = await db
    .selectFrom("content_containers")
    .select(CONTAINER_COLUMNS)
    .where("id", "in", ids)
    .execute();
  return rows.map(toContainer);
}

export async function deleteContainerRow(db: Db, containerId: string): Promise<ContainerView | null> {
  const row = await db
    .deleteFrom("content_containers")
    .where("id", "=", containerId)
    .returning(CONTAINER_COLUMNS)
    .executeTakeFirst();
  return row ? toContainer(row) : null;
}

/** When generated media of a project archived at `archivedAt` expires: the seed's 90 days of grace. */
export function containerExpiry(archivedAt: Date): Date {
  return daysBefore(archivedAt, -RETENTION.containerGraceDays);
}

/**
 * Archiving gives every container of the project its expiry (archived_at + 90 days); unarchiving
 * (`archivedAt` null) takes it away. Runs in the archive verb's transaction, so the two commit together.
 * Containers written later for an archived project get theirs from a trigger (migration 0012).
 */
export async function setProjectContainersExpiry(
  db: Db,
  projectId: string,
  archivedAt: Date | null,
): Promise<number> {
  const result = await db
    .updateTable("content_containers")
    .set({ expires_at: archivedAt ? containerExpiry(archivedAt) : null })
    .where("project_id", "=", projectId)
    .executeTakeFirst();
  return Number(result.numUpdatedRows);
}
