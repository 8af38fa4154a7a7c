import { type Db, withTenant } from "../../shared/db";
import { newId } from "../../shared/ids";

export interface Organization {
  id: string;
  name: string;
}

/** Creates an org. Runs scoped to the new id, so even this insert passes the tenant policy's check. */
export async function createOrganization(
  db: Db,
  input: { name: string; id?: string },
): Promise<Organization> {
  const id = input.id ?? newId("org");
  await withTenant(db, id, (tx) => tx.insertInto("organizations").values({ id, name: input.name }).execute());
  return { id, name: input.name };
}
