import type { Db } from "../../shared/db";
import { newestFirstPage } from "../../shared/db/newestFirstPage";
import { ApiError } from "../../shared/errors";
import { newId } from "../../shared/ids";
import { audit } from "../audit/writeAudit";
import { found, type VerbContext } from "../context";
import { requireLayer } from "../projects/layers";
import { changeableProject, visibleProject } from "../projects/verbs";
import { containersOfOrg } from "./containers";

// The org's creative library (ads_content): an entry made of one or more containers in a kept order, with a
// status (draft → ready → archived), and where projects use it (project_ads_content: active or paused).
// Org-wide: an entry may combine containers of several projects, so keys restricted to one project are
// refused by the routes. Deleting a container removes it from every entry (the link rows cascade).

export const ADS_CONTENT_STATUSES = ["draft", "ready", "archived"] as const;
export type AdsContentStatus = (typeof ADS_CONTENT_STATUSES)[number];
export const PROJECT_ADS_CONTENT_STATUSES = ["active", "paused"] as const;
export type ProjectAdsContentStatus = (typeof PROJECT_ADS_CONTENT_STATUSES)[number];

/** Containers per entry: a carousel or a reel's parts, not a folder. */
export const MAX_CONTAINERS_PER_ADS_CONTENT = 20;

export interface AdsContentView {
  id: string;
  name: string;
  status: AdsContentStatus;
  containerIds: string[];
  createdAt: Date;
  updatedAt: Date;
}

export interface ProjectAdsContentView {
  projectId: string;
  adsContentId: string;
  status: ProjectAdsContentStatus;
  createdAt: Date;
  updatedAt: Date;
}

export function adsContentJson(v: AdsContentView) {
  return {
    id: v.id,
    object: "ads_content" as const,
    name: v.name,
    status: v.status,
    containerIds: v.containerIds,
    createdAt: v.createdAt.toISOString(),
    updatedAt: v.updatedAt.toISOString(),
  };
}

export function projectAdsContentJson(v: ProjectAdsContentView) {
  return {
    // The entry's id: a project uses an entry at most once, and lists page on it.
    id: v.adsContentId,
    object: "project_ads_content" as const,
    projectId: v.projectId,
    adsContentId: v.adsContentId,
    status: v.status,
    createdAt: v.createdAt.toISOString(),
    updatedAt: v.updatedAt.toISOString(),
  };
}

const noEntry = (id: string) => `No ads content ${id}.`;

type EntryRow = {
  id: string;
  name: string;
  status: AdsContentStatus;
  created_at: Date;
  updated_at: Date;
};

async function withContainers(db: Db, rows: EntryRow[]): Promise<AdsContentView[]> {
  if (rows.length === 0) return [];
  const links = await db
    .selectFrom("ads_content_containers")
    .select(["ads_content_id", "container_id", "position"])
    .where(
      "ads_content_id",
      "in",
      rows.map((r) => r.id),
    )
    .orderBy("position")
    .execute();
  return rows.map((r) => ({
    id: r.id,
    name: r.name,
    status: r.status,
    containerIds: links.filter((l) => l.ads_content_id === r.id).map((l) => l.container_id),
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  }));
}

const ENTRY_COLUMNS = ["id", "name", "status", "created_at", "updated_at"] as const;

async function loadEntry(db: Db, id: string, lock = false): Promise<AdsContentView | null> {
  let query = db.selectFrom("ads_content").select(ENTRY_COLUMNS).where("id", "=", id);
  if (lock) query = query.forUpdate();
  const row = await query.executeTakeFirst();
  if (!row) return null;
  return (await withContainers(db, [row as EntryRow]))[0] ?? null;
}

/** Every id must name a container of the org: else 404, as for a missing one (RLS: another org's reads as missing). */
async function checkContainers(db: Db, ids: readonly string[]): Promise<void> {
  if (new Set(ids).size !== ids.length) {
    throw new ApiError("invalid_request", "containerIds lists a container twice.", {
      details: [{ field: "containerIds", message: "Each container at most once." }],
    });
  }
  const known = new Set((await containersOfOrg(db, ids)).map((c) => c.id));
  const missing = ids.findIndex((id) => !known.has(id));
  if (missing >= 0) {
    throw new ApiError("not_found", `No content container ${ids[missing]}.`, {
      details: [{ field: `containerIds.${missing}`, message: "No such content container." }],
    });
  }
}

/** A ready entry is one a project can run: it needs something in it. */
function checkReady(status: AdsContentStatus, containerCount: number): void {
  if (status === "ready" && containerCount === 0) {
    throw new ApiError("invalid_request", "An ads content entry needs at least one container to be ready.", {
      details: [{ field: "status", message: "ready needs at least one container." }],
    });
  }
}

async function writeLinks(db: Db, orgId: string, entryId: string, ids: readonly string[]): Promise<void> {
  await db.deleteFrom("ads_content_containers").where("ads_content_id", "=", entryId).execute();
  if (ids.length === 0) return;
  await db
    .insertInto("ads_content_containers")
    .values(
      ids.map((container_id, position) => ({
        org_id: orgId,
        ads_content_id: entryId,
        container_id,
        position,
      })),
    )
    .execute();
}

export async function createAdsContent(
  ctx: VerbContext,
  input: { name: string; containerIds: string[]; status?: AdsContentStatus | undefined },
): Promise<AdsContentView> {
  checkReady(input.status ?? "draft", input.containerIds.length);
  await checkContainers(ctx.db, input.containerIds);
  const id = newId("adc");
  await ctx.db
    .insertInto("ads_content")
    .values({
      id,
      org_id: ctx.orgId,
      name: input.name,
      status: input.status ?? "draft",
      created_at: ctx.now,
      updated_at: ctx.now,
    })
    .execute();
  await writeLinks(ctx.db, ctx.orgId, id, input.containerIds);
  const created = found(await loadEntry(ctx.db, id), noEntry(id));
  await audit(ctx, "ads_content.created", { type: "ads_content", id }, { after: adsContentJson(created) });
  return created;
}

export async function listAdsContent(
  ctx: VerbContext,
  page: { limit: number; startingAfter?: string | undefined; status?: AdsContentStatus | undefined },
): Promise<{ data: AdsContentView[]; hasMore: boolean }> {
  let query = ctx.db.selectFrom("ads_content").select(ENTRY_COLUMNS);
  if (page.status) query = query.where("status", "=", page.status);
  const { rows, hasMore } = await newestFirstPage(query, {
    table: "ads_content",
    time: "created_at",
    id: "id",
    limit: page.limit,
    startingAfter: page.startingAfter,
  });
  return { data: await withContainers(ctx.db, rows as EntryRow[]), hasMore };
}

export async function getAdsContent(ctx: VerbContext, id: string): Promise<AdsContentView> {
  return found(await loadEntry(ctx.db, id), noEntry(id));
}

export async function updateAdsContent(
  ctx: VerbContext,
  id: string,
  patch: {
    name?: string | undefined;
    status?: AdsContentStatus | undefined;
    containerIds?: string[] | undefined;
  },
): Promise<AdsContentView> {
  const before = found(await loadEntry(ctx.db, id, true), noEntry(id));
  checkReady(patch.status ?? before.status, (patch.containerIds ?? before.containerIds).length);
  if (patch.containerIds) await checkContainers(ctx.db, patch.containerIds);
  const changed =
    (patch.name !== undefined && patch.name !== before.name) ||
    (patch.status !== undefined && patch.status !== before.status) ||
    (patch.containerIds !== undefined &&
      JSON.stringify(patch.containerIds) !== JSON.stringify(before.containerIds));
  if (!changed) return before;
  await ctx.db
    .updateTable("ads_content")
    .set({
      ...(patch.name !== undefined ? { name: patch.name } : {}),
      ...(patch.status !== undefined ? { status: patch.status } : {}),
      updated_at: ctx.now,
    })
    .where("id", "=", id)
    .execute();
  if (patch.containerIds) await writeLinks(ctx.db, ctx.orgId, id, patch.containerIds);
  const after = found(await loadEntry(ctx.db, id), noEntry(id));
  await audit(
    ctx,
    "ads_content.updated",
    { type: "ads_content", id },
    { before: adsContentJson(before), after: adsContentJson(after) },
  );
  return after;
}

/** Deletes the entry and its use in every project; the containers stay. */
export async function deleteAdsContent(ctx: VerbContext, id: string): Promise<void> {
  const before = found(await loadEntry(ctx.db, id, true), noEntry(id));
  await ctx.db.deleteFrom("ads_content").where("id", "=", id).execute();
  await audit(ctx, "ads_content.deleted", { type: "ads_content", id }, { before: adsContentJson(before) });
}

const USE_COLUMNS = ["project_id", "ads_content_id", "status", "created_at", "updated_at"] as const;

function toUse(row: {
  project_id: string;
  ads_content_id: string;
  status: ProjectAdsContentStatus;
  created_at: Date;
  updated_at: Date;
}): ProjectAdsContentView {
  return {
    projectId: row.project_id,
    adsContentId: row.ads_content_id,
    status: row.status,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

export async function listProjectAdsContent(
  ctx: VerbContext,
  projectId: string,
  page: { limit: number; startingAfter?: string | undefined },
): Promise<{ data: ProjectAdsContentView[]; hasMore: boolean }> {
  await visibleProject(ctx, projectId);
  const { rows, hasMore } = await newestFirstPage(
    ctx.db.selectFrom("project_ads_content").select(USE_COLUMNS).where("project_id", "=", projectId),
    {
      table: "project_ads_content",
      time: "created_at",
      id: "ads_content_id",
      limit: page.limit,
      startingAfter: page.startingAfter,
      cursorScope: { project_id: projectId },
    },
  );
  return { data: rows.map(toUse), hasMore };
}

/**
 * Uses an entry in a project (or changes its status there): an upsert, so the same PUT twice is one use.
 * Needs the project's content layer on (409 layer_disabled); an archived entry cannot be put to use (409
 * conflict), a use that exists can still be paused or removed.
 */
export async function putProjectAdsContent(
  ctx: VerbContext,
  projectId: string,
  adsContentId: string,
  status: ProjectAdsContentStatus,
): Promise<{ use: ProjectAdsContentView; created: boolean }> {
  await changeableProject(ctx, projectId);
  const entry = found(await loadEntry(ctx.db, adsContentId), noEntry(adsContentId));
  const existing = await ctx.db
    .selectFrom("project_ads_content")
    .select(USE_COLUMNS)
    .where("project_id", "=", projectId)
    .where("ads_content_id", "=", adsContentId)
    .forUpdate()
    .executeTakeFirst();
  if (existing && existing.status === status) return { use: toUse(existing), created: false };
  if (status === "active") await requireLayer(ctx.db, projectId, "content");
  if (entry.status === "archived" && status === "active") {
    throw new ApiError("conflict", `Ads content ${adsContentId} is archived; set it to ready first.`);
  }
  const row = await ctx.db
    .insertInto("project_ads_content")
    .values({
      org_id: ctx.orgId,
      project_id: projectId,
      ads_content_id: adsContentId,
      status,
      created_at: ctx.now,
      updated_at: ctx.now,
    })
    .onConflict((oc) =>
      oc.columns(["project_id", "ads_content_id"]).doUpdateSet({ status, updated_at: ctx.now }),
    )
    .returning(USE_COLUMNS)
    .executeTakeFirstOrThrow();
  const use = toUse(row);
  await audit(
    ctx,
    existing ? "project_ads_content.updated" : "project_ads_content.created",
    { type: "project_ads_content", id: `${projectId}/${adsContentId}` },
    {
      ...(existing ? { before: projectAdsContentJson(toUse(existing)) } : {}),
      after: projectAdsContentJson(use),
    },
  );
  return { use, created: !existing };
}

export async function deleteProjectAdsContent(
  ctx: VerbContext,
  projectId: string,
  adsContentId: string,
): Promise<void> {
  await visibleProject(ctx, projectId);
  const removed = await ctx.db
    .deleteFrom("project_ads_content")
    .where("project_id", "=", projectId)
    .where("ads_content_id", "=", adsContentId)
    .returning(USE_COLUMNS)
    .executeTakeFirst();
  const before = found(removed, `Project ${projectId} does not use ads content ${adsContentId}.`);
  await audit(
    ctx,
    "project_ads_content.deleted",
    { type: "project_ads_content", id: `${projectId}/${adsContentId}` },
    { before: projectAdsContentJson(toUse(before)) },
  );
}
