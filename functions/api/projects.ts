import type { Tx } from "../../shared/db";
import { newestFirstPage } from "../../shared/db/newestFirstPage";
import { PROJECT_COLUMNS, type Project, toProject } from "../tenancy/createProject";

export async function getProject(tx: Tx, projectId: string): Promise<Project | null> {
  const row = await tx
    .selectFrom("projects")
    .select(PROJECT_COLUMNS)
    .where("id", "=", projectId)
    .executeTakeFirst();
  return row ? toProject(row) : null;
}

export async function listProjects(
  tx: Tx,
  page: { limit: number; startingAfter?: string | undefined; onlyId?: string | null | undefined },
): Promise<{ data: Project[]; hasMore: boolean }> {
  let query = tx.selectFrom("projects").select(PROJECT_COLUMNS);
  if (page.onlyId) query = query.where("id", "=", page.onlyId);
  const after = page.startingAfter;
  const { rows, hasMore } = await newestFirstPage(
    query,
    { time: "created_at", id: "id" },
    page.limit,
    after
      ? { id: after, time: tx.selectFrom("projects").select("created_at").where("id", "=", after) }
      : undefined,
  );
  return { data: rows.map(toProject), hasMore };
}

export async function updateProject(
  tx: Tx,
  projectId: string,
  patch: {
    name?: string | undefined;
    eventRetentionDays?: number | undefined;
    archived?: boolean | undefined;
  },
  now: Date,
): Promise<{ before: Project; after: Project } | null> {
  const before = await getProject(tx, projectId);
  if (!before) return null;
  const row = await tx
    .updateTable("projects")
    .set({
      ...(patch.name === undefined ? {} : { name: patch.name }),
      ...(patch.eventRetentionDays === undefined ? {} : { event_retention_days: patch.eventRetentionDays }),
      ...(patch.archived === undefined
        ? {}
        : { archived_at: patch.archived ? (before.archivedAt ?? now) : null }),
      updated_at: now,
    })
    .where("id", "=", projectId)
    .returning(PROJECT_COLUMNS)
    .executeTakeFirstOrThrow();
  return { before, after: toProject(row) };
}
