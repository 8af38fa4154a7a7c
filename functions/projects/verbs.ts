import { sql } from "kysely";
import { ApiError } from "../../shared/errors";
import { audit } from "../audit/writeAudit";
import { setProjectContainersExpiry } from "../content/containers";
import { found, transactionOf, type VerbContext } from "../context";
import { emitWebhookEvent } from "../webhooks/outbox";
import { createProject, getProject, listProjects, type Project, updateProject } from "./store";

/** A project as the API shows it and as its audit rows record it. */
export function projectJson(p: Project) {
  return {
    id: p.id,
    object: "project" as const,
    name: p.name,
    eventRetentionDays: p.eventRetentionDays,
    archived: p.archivedAt !== null,
    archivedAt: p.archivedAt?.toISOString() ?? null,
    createdAt: p.createdAt.toISOString(),
    updatedAt: p.updatedAt.toISOString(),
  };
}

/**
 * A project the caller may see: in its org (RLS) and, for a project-restricted key, its own project. Else
 * 404, the same answer as for a project that does not exist. Every verb on a project's resources starts here.
 */
export async function visibleProject(ctx: VerbContext, projectId: string): Promise<Project> {
  const project = ctx.projectId && ctx.projectId !== projectId ? null : await getProject(ctx.db, projectId);
  return found(project, `No project ${projectId}.`);
}

/**
 * A project the caller may change: visible (as above) and not being deleted. A project whose deletion was
 * requested is erased by the Cron Worker: it cannot be unarchived, renamed, given keys or destinations, or
 * switched on again (409 project_deletion_pending). Locked for share: a change and the deletion request
 * (which locks the row for update) happen one after the other, never interleaved.
 */
export async function changeableProject(ctx: VerbContext, projectId: string): Promise<Project> {
  const project = await visibleProject(ctx, projectId);
  const { rows } = await sql<{ deleted_at: Date | null }>`
    select deleted_at from projects where id = ${projectId} for share
  `.execute(ctx.db);
  if (rows[0]?.deleted_at) {
    throw new ApiError(
      "project_deletion_pending",
      `Project ${projectId} is being deleted and can no longer be changed (DELETE /v1/projects/${projectId} again returns its deletion).`,
    );
  }
  return project;
}

export async function addProject(
  ctx: VerbContext,
  input: { name: string; eventRetentionDays?: number },
): Promise<Project> {
  const project = await createProject(ctx.db, ctx.orgId, input);
  await audit(ctx, "project.created", { type: "project", id: project.id }, { after: projectJson(project) });
  return project;
}

/** The projects the caller may see, newest first: a restricted key sees its own only. */
export function listVisibleProjects(
  ctx: VerbContext,
  page: { limit: number; startingAfter?: string | undefined },
): Promise<{ data: Project[]; hasMore: boolean }> {
  return listProjects(ctx.db, { ...page, onlyId: ctx.projectId });
}

/** Renames, changes retention, archives or unarchives; the audit action names which. */
export async function changeProject(
  ctx: VerbContext,
  projectId: string,
  patch: {
    name?: string | undefined;
    eventRetentionDays?: number | undefined;
    archived?: boolean | undefined;
  },
): Promise<Project> {
  await changeableProject(ctx, projectId);
  const changed = found(await updateProject(ctx.db, projectId, patch, ctx.now), `No project ${projectId}.`);
  // Generated media follows the project: archiving starts its 90 days of grace, unarchiving stops them,
  // in this transaction so the archive and the expiry commit together.
  const wasArchived = changed.before.archivedAt !== null;
  const isArchived = changed.after.archivedAt !== null;
  if (wasArchived !== isArchived)
    await setProjectContainersExpiry(ctx.db, projectId, changed.after.archivedAt);
  const action =
    patch.archived === undefined
      ? "project.updated"
      : patch.archived
        ? "project.archived"
        : "project.unarchived";
  await audit(
    ctx,
    action,
    { type: "project", id: projectId },
    { before: projectJson(changed.before), after: projectJson(changed.after) },
  );
  // Archiving an already archived project changes nothing, so it notifies nobody.
  if (changed.before.archivedAt === null && changed.after.archivedAt !== null) {
    await emitWebhookEvent(transactionOf(ctx), {
      orgId: ctx.orgId,
      projectId,
      type: "project.archived",
      payload: {
        projectId,
        archivedAt: changed.after.archivedAt.toISOString(),
        link: `/v1/projects/${projectId}`,
      },
      now: ctx.now,
    });
  }
  return changed.after;
}
