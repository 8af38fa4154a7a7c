import type { Tx } from "../../shared/db";
import { newId } from "../../shared/ids";

export interface Project {
  id: string;
  orgId: string;
  name: string;
  eventRetentionDays: number;
  archivedAt: Date | null;
  createdAt: Date;
  updatedAt: Date;
}

export const PROJECT_COLUMNS = [
  "id",
  "org_id",
  "name",
  "event_retention_days",
  "archived_at",
  "created_at",
  "updated_at",
] as const;

export function toProject(row: {
  id: string;
  org_id: string;
  name: string;
  event_retention_days: number;
  archived_at: Date | null;
  created_at: Date;
  updated_at: Date;
}): Project {
  return {
    id: row.id,
    orgId: row.org_id,
    name: row.name,
    eventRetentionDays: row.event_retention_days,
    archivedAt: row.archived_at,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

/** Creates a project in the org the transaction is scoped to (see withTenant). */
export async function createProject(
  tx: Tx,
  orgId: string,
  input: { name: string; eventRetentionDays?: number; id?: string },
): Promise<Project> {
  const row = await tx
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
