import type { Db } from "../../shared/db";
import { newestFirstPage } from "../../shared/db/newestFirstPage";
import { newId } from "../../shared/ids";
import type { Role } from "../../shared/roles";

// The partner's people (Layers is the controller of this data). Emails are stored as given, normalized
// (trimmed, lowercased) by the caller's schema; they are never written to logs.

export interface Member {
  id: string;
  email: string;
  name: string | null;
  role: Role;
  createdAt: Date;
  updatedAt: Date;
}

/**
 * Why a member change was refused; the verb (verbs.ts) maps each to its API error. Owners are managed by owners
 * only (roles.ts: admins manage members, not owners), and an org never loses its last owner.
 */
export type MemberRefusal = "not_found" | "email_taken" | "owner_required" | "last_owner";

const COLUMNS = ["id", "email", "name", "role", "created_at", "updated_at"] as const;

type Row = {
  id: string;
  email: string;
  name: string | null;
  role: Role;
  created_at: Date;
  updated_at: Date;
};

function toMember(row: Row): Member {
  return {
    id: row.id,
    email: row.email,
    name: row.name,
    role: row.role,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

/** Postgres `unique_violation`: the (org_id, email) constraint, should a concurrent insert slip past. */
function isUniqueViolation(error: unknown): boolean {
  return typeof error === "object" && error !== null && "code" in error && error.code === "23505";
}

/**
 * Serializes the org's member changes on its organizations row. Every create, update and remove takes it
 * first (always in this one order, so no deadlocks): the last-owner check and the duplicate-email check
 * then read a state no concurrent change can invalidate before commit.
 */
async function lockMembers(db: Db, orgId: string): Promise<void> {
  await db.selectFrom("organizations").select("id").where("id", "=", orgId).forUpdate().execute();
}

export async function getMember(db: Db, memberId: string): Promise<Member | null> {
  const row = await db.selectFrom("members").select(COLUMNS).where("id", "=", memberId).executeTakeFirst();
  return row ? toMember(row) : null;
}

async function getMemberByEmail(db: Db, email: string): Promise<Member | null> {
  const row = await db.selectFrom("members").select(COLUMNS).where("email", "=", email).executeTakeFirst();
  return row ? toMember(row) : null;
}

async function countOwners(db: Db): Promise<number> {
  const { count } = await db
    .selectFrom("members")
    .select((eb) => eb.fn.countAll<string>().as("count"))
    .where("role", "=", "owner")
    .executeTakeFirstOrThrow();
  return Number(count);
}

export async function listMembers(
  db: Db,
  page: { limit: number; startingAfter?: string | undefined },
): Promise<{ data: Member[]; hasMore: boolean }> {
  const { rows, hasMore } = await newestFirstPage(db.selectFrom("members").select(COLUMNS), {
    table: "members",
    time: "created_at",
    id: "id",
    ...page,
  });
  return { data: rows.map(toMember), hasMore };
}

/** Adds a member. `actorRole` is the caller's: only an owner may add an owner. */
export async function createMember(
  db: Db,
  orgId: string,
  input: { email: string; name?: string | null | undefined; role: Role },
  actorRole: Role,
  now: Date,
): Promise<{ member: Member } | { refused: MemberRefusal }> {
  if (input.role === "owner" && actorRole !== "owner") return { refused: "owner_required" };
  await lockMembers(db, orgId);
  if (await getMemberByEmail(db, input.email)) return { refused: "email_taken" };
  // The check above runs under the lock; a writer that skips the lock still meets the unique constraint,
  // which aborts the transaction: the caller must throw (roll back) on any refusal, never carry on.
  try {
    const row = await db
      .insertInto("members")
      .values({
        id: newId("mem"),
        org_id: orgId,
        email: input.email,
        name: input.name ?? null,
        role: input.role,
        created_at: now,
        updated_at: now,
      })
      .returning(COLUMNS)
      .executeTakeFirstOrThrow();
    return { member: toMember(row) };
  } catch (error) {
    if (isUniqueViolation(error)) return { refused: "email_taken" };
    throw error;
  }
}

/** Only an owner may touch an owner, or make one. */
function ownerRequired(actorRole: Role, currentRole: Role, newRole?: Role): boolean {
  return actorRole !== "owner" && (currentRole === "owner" || newRole === "owner");
}

/** Changes a member's role and/or name. The org's last owner is never demoted. */
export async function updateMember(
  db: Db,
  orgId: string,
  memberId: string,
  patch: { role?: Role | undefined; name?: string | null | undefined },
  actorRole: Role,
  now: Date,
): Promise<{ before: Member; after: Member } | { refused: MemberRefusal }> {
  await lockMembers(db, orgId);
  const before = await getMember(db, memberId);
  if (!before) return { refused: "not_found" };
  if (ownerRequired(actorRole, before.role, patch.role)) return { refused: "owner_required" };
  const demotesOwner = before.role === "owner" && patch.role !== undefined && patch.role !== "owner";
  if (demotesOwner && (await countOwners(db)) <= 1) return { refused: "last_owner" };
  const row = await db
    .updateTable("members")
    .set({
      ...(patch.role === undefined ? {} : { role: patch.role }),
      ...(patch.name === undefined ? {} : { name: patch.name }),
      updated_at: now,
    })
    .where("id", "=", memberId)
    .returning(COLUMNS)
    .executeTakeFirstOrThrow();
  return { before, after: toMember(row) };
}

/** Removes a member. The org's last owner is never removed. */
export async function removeMember(
  db: Db,
  orgId: string,
  memberId: string,
  actorRole: Role,
): Promise<{ removed: Member } | { refused: MemberRefusal }> {
  await lockMembers(db, orgId);
  const current = await getMember(db, memberId);
  if (!current) return { refused: "not_found" };
  if (ownerRequired(actorRole, current.role)) return { refused: "owner_required" };
  if (current.role === "owner" && (await countOwners(db)) <= 1) return { refused: "last_owner" };
  await db.deleteFrom("members").where("id", "=", memberId).execute();
  return { removed: current };
}
