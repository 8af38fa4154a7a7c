import type { Db } from "../../shared/db";
import { withFilters } from "../../shared/db/filters";
import { newestFirstPage } from "../../shared/db/newestFirstPage";
import { newId } from "../../shared/ids";

export interface Project {
  id: string;
  orgId: string;
  name: string;
  eventRetentionDays: number;
  archivedAt: Date | null;
  /** Set when its deletion was requested (functions/lifecycle/verbs.ts): it can be read, not changed. */
  deletedAt: Date | null;
  createdAt: Date;
  updatedAt: Date;
}

export const PROJECT_COLUMNS = [
  "id",
  "org_id",
  "name",
  "event_retention_days",
  "archived_at",
  "deleted_at",
  "created_at",
  "updated_at",
] as const;

export function toProject(row: {
  id: string;
  org_id: string;
  name: string;
  event_retention_days: number;
  archived_at: Date | null;
  deleted_at: Date | null;
  created_at: Date;
  updated_at: Date;
}): Project {
  return {
    id: row.id,
    orgId: row.org_id,
    name: row.name,
    eventRetentionDays: row.event_retention_days,
    archivedAt: row.archived_at,
    deletedAt: row.deleted_at,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

/** Creates a project in the org the transaction is scoped to (see withTenant). */
export async function createProject(
  db: Db,
  orgId: string,
  input: { name: string; eventRetentionDays?: number; id?: string },
): Promise<Project> {
  const row = await db
    .insertInto("projects")
    .values({
      id: input.id ?? newId("proj"),
      org_id: orgId,
      name: input.name,
      ...(input.eventRetentionDays === undefined ? {} : { event_retention_days: input.eventRetentionDays }),
    })
    .returning(PROJECT_COLUMNS)
    .executeTakeFirstOrThrow();
  return toProject(row);
}

export async function getProject(db: Db, projectId: string): Promise<Project | null> {
  const row = await db
    .selectFrom("projects")
    .select(PROJECT_COLUMNS)
    .where("id", "=", projectId)
    .executeTakeFirst();
  return row ? toProject(row) : null;
}

export async function listProjects(
  db: Db,
  page: { limit: number; startingAfter?: string | undefined; onlyId?: string | null | undefined },
): Promise<{ data: Project[]; hasMore: boolean }> {
  const query = withFilters(db.selectFrom("projects").select(PROJECT_COLUMNS), {
    equal: { id: page.onlyId },
  });
  const { rows, hasMore } = await newestFirstPage(query, {
    table: "projects",
    time: "created_at",
    id: "id",
    limit: page.limit,
    startingAfter: page.startingAfter,
  });
  return { data: rows.map(toProject), hasMore };
}

export async function updateProject(
  db: Db,
  projectId: string,
  patch: {
    name?: string | undefined;
    eventRetentionDays?: number | undefined;
    archived?: boolean | undefined;
  },
  now: Date,
): Promise<{ before: Project; after: Project } | null> {
  const before = await getProject(db, projectId);
  if (!before) return null;
  const row = await db
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
