import type { Tx } from "../../shared/db";
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
  let query = tx
    .selectFrom("projects")
    .select(PROJECT_COLUMNS)
    .orderBy("created_at", "desc")
    .orderBy("id", "desc");
  if (page.onlyId) query = query.where("id", "=", page.onlyId);
  if (page.startingAfter) {
    const after = page.startingAfter;
    const cursor = tx.selectFrom("projects").select("created_at").where("id", "=", after);
    query = query.where((eb) =>
      eb.or([eb("created_at", "<", cursor), eb.and([eb("created_at", "=", cursor), eb("id", "<", after)])]),
    );
  }
  const rows = await query.limit(page.limit + 1).execute();
  return { data: rows.slice(0, page.limit).map(toProject), hasMore: rows.length > page.limit };
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
