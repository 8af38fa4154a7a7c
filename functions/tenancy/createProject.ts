import { type Db, withTenant } from "../../shared/db";
import { newId } from "../../shared/ids";

export interface Project {
  id: string;
  orgId: string;
  name: string;
  eventRetentionDays: number;
}

export async function createProject(
  db: Db,
  orgId: string,
  input: { name: string; eventRetentionDays?: number; id?: string },
): Promise<Project> {
  const id = input.id ?? newId("proj");
  const row = await withTenant(db, orgId, (tx) =>
    tx
      .insertInto("projects")
      .values({
        id,
        org_id: orgId,
        name: input.name,
        ...(input.eventRetentionDays === undefined ? {} : { event_retention_days: input.eventRetentionDays }),
      })
      .returning(["id", "org_id", "name", "event_retention_days"])
      .executeTakeFirstOrThrow(),
  );
  return { id: row.id, orgId: row.org_id, name: row.name, eventRetentionDays: row.event_retention_days };
}
