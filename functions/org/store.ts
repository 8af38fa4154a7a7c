import type { Db } from "../../shared/db";

export interface Org {
  id: string;
  name: string;
  createdAt: Date;
}

const COLUMNS = ["id", "name", "created_at"] as const;

function toOrg(row: { id: string; name: string; created_at: Date }): Org {
  return { id: row.id, name: row.name, createdAt: row.created_at };
}

/** The caller's org. `tx` is scoped to it; the explicit id filter keeps the answer right without RLS too. */
export async function getOrg(db: Db, orgId: string): Promise<Org | null> {
  const row = await db.selectFrom("organizations").select(COLUMNS).where("id", "=", orgId).executeTakeFirst();
  return row ? toOrg(row) : null;
}

export async function updateOrg(
  db: Db,
  orgId: string,
  patch: { name?: string | undefined },
): Promise<{ before: Org; after: Org } | null> {
  // FOR UPDATE: a concurrent rename waits, so each audit row's `before` is what that change replaced.
  const current = await db
    .selectFrom("organizations")
    .select(COLUMNS)
    .where("id", "=", orgId)
    .forUpdate()
    .executeTakeFirst();
  if (!current) return null;
  const before = toOrg(current);
  if (patch.name === undefined) return { before, after: before };
  const row = await db
    .updateTable("organizations")
    .set({ name: patch.name })
    .where("id", "=", orgId)
    .returning(COLUMNS)
    .executeTakeFirstOrThrow();
  return { before, after: toOrg(row) };
}
