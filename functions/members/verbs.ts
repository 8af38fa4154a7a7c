import { ApiError } from "../../shared/errors";
import type { Role } from "../../shared/roles";
import { audit } from "../audit/writeAudit";
import type { VerbContext } from "../context";
import {
  createMember,
  listMembers,
  type Member,
  type MemberRefusal,
  removeMember,
  updateMember,
} from "./store";

/** A member as the API shows it and as its audit rows record it. */
export function memberJson(m: Member) {
  return {
    id: m.id,
    object: "member" as const,
    name: m.name,
    email: m.email,
    role: m.role,
    createdAt: m.createdAt.toISOString(),
    updatedAt: m.updatedAt.toISOString(),
  };
}

function refusal(reason: MemberRefusal, memberId?: string): ApiError {
  switch (reason) {
    case "not_found":
      return new ApiError("not_found", `No member ${memberId}.`);
    case "email_taken":
      return new ApiError("conflict", "A member with this email already exists in the org.");
    case "owner_required":
      return new ApiError("forbidden", "Only an owner key can add, change or remove an owner.");
    case "last_owner":
      return new ApiError("conflict", "This is the org's last owner; make another member owner first.");
  }
}

export async function addMember(
  ctx: VerbContext,
  input: { email: string; name?: string | null | undefined; role: Role },
): Promise<Member> {
  const result = await createMember(ctx.db, ctx.orgId, input, ctx.role, ctx.now);
  if ("refused" in result) throw refusal(result.refused);
  await audit(
    ctx,
    "member.created",
    { type: "member", id: result.member.id },
    { after: memberJson(result.member) },
  );
  return result.member;
}

export function listOrgMembers(
  ctx: VerbContext,
  page: { limit: number; startingAfter?: string | undefined },
): Promise<{ data: Member[]; hasMore: boolean }> {
  return listMembers(ctx.db, page);
}

export async function changeMember(
  ctx: VerbContext,
  memberId: string,
  patch: { role?: Role | undefined; name?: string | null | undefined },
): Promise<Member> {
  const result = await updateMember(ctx.db, ctx.orgId, memberId, patch, ctx.role, ctx.now);
  if ("refused" in result) throw refusal(result.refused, memberId);
  await audit(
    ctx,
    "member.updated",
    { type: "member", id: memberId },
    { before: memberJson(result.before), after: memberJson(result.after) },
  );
  return result.after;
}

export async function dropMember(ctx: VerbContext, memberId: string): Promise<Member> {
  const result = await removeMember(ctx.db, ctx.orgId, memberId, ctx.role);
  if ("refused" in result) throw refusal(result.refused, memberId);
  await audit(
    ctx,
    "member.removed",
    { type: "member", id: memberId },
    { before: memberJson(result.removed) },
  );
  return result.removed;
}
