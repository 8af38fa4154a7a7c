import { createRoute, type OpenAPIHono, z } from "@hono/zod-openapi";
import {
  createMember,
  listMembers,
  type Member,
  type MemberRefusal,
  removeMember,
  updateMember,
} from "../../../functions/api/members";
import { ApiError } from "../../../shared/errors";
import { ROLES } from "../../../shared/roles";
import { requires } from "../access";
import type { ApiEnv } from "../context";
import { audit, mutation, query } from "../handlers";
import {
  dateTime,
  errorResponses,
  IdempotencyHeaderSchema,
  json,
  listOf,
  PageQuerySchema,
  page,
} from "../schemas";

export const MemberSchema = z
  .object({
    id: z.string().openapi({ example: "mem_4fQm8TzR2pWc6KxYb9Ld" }),
    object: z.literal("member"),
    email: z.string().openapi({ example: "ana@example.com", description: "Trimmed and lowercased." }),
    name: z.string().nullable(),
    role: z.enum(ROLES),
    createdAt: dateTime(),
    updatedAt: dateTime(),
  })
  .openapi("Member");

export const DeletedMemberSchema = MemberSchema.extend({ deleted: z.literal(true) }).openapi("DeletedMember");

const email = z
  .string()
  .trim()
  .toLowerCase()
  .email()
  .min(3)
  .max(320)
  .openapi({ description: "Unique in the org; trimmed and lowercased.", example: "ana@example.com" });
const name = z.string().trim().min(1).max(200);

const CreateMemberSchema = z
  .object({ email, name: name.nullable().optional(), role: z.enum(ROLES) })
  .strict()
  .openapi("CreateMember", { example: { email: "ana@example.com", name: "Ana", role: "developer" } });

const UpdateMemberSchema = z
  .object({
    role: z.enum(ROLES).optional(),
    name: name.nullable().optional().openapi({ description: "null clears it." }),
  })
  .strict()
  .refine((patch) => Object.keys(patch).length > 0, {
    message: "Send at least one field to change: role, name.",
  })
  .openapi("UpdateMember", { example: { role: "admin" } });

const MemberParams = z.object({
  memberId: z
    .string()
    .max(64)
    .openapi({ param: { name: "memberId", in: "path" } }),
});

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

// Members are org-wide people data: a project-restricted key can neither list nor manage them.
const create = createRoute({
  ...requires("admin", { orgWide: true }),
  method: "post",
  path: "/v1/members",
  tags: ["Members"],
  summary: "Add a member (admin; only an owner key can add an owner)",
  request: {
    headers: IdempotencyHeaderSchema,
    body: { content: { "application/json": { schema: CreateMemberSchema } }, required: true },
  },
  responses: { 201: json(MemberSchema, "The member"), ...errorResponses(400, 403, 409, 422) },
});

const list = createRoute({
  ...requires("read_only", { orgWide: true }),
  method: "get",
  path: "/v1/members",
  tags: ["Members"],
  summary: "List members, newest first",
  request: { query: PageQuerySchema },
  responses: {
    200: json(listOf(MemberSchema, "MemberList"), "A page of members"),
    ...errorResponses(400, 403),
  },
});

const update = createRoute({
  ...requires("admin", { orgWide: true }),
  method: "patch",
  path: "/v1/members/{memberId}",
  tags: ["Members"],
  summary: "Change a member's role or name (admin; owners only by an owner key; never the last owner's role)",
  request: {
    params: MemberParams,
    headers: IdempotencyHeaderSchema,
    body: { content: { "application/json": { schema: UpdateMemberSchema } }, required: true },
  },
  responses: { 200: json(MemberSchema, "The member"), ...errorResponses(400, 403, 404, 409, 422) },
});

const remove = createRoute({
  ...requires("admin", { orgWide: true }),
  method: "delete",
  path: "/v1/members/{memberId}",
  tags: ["Members"],
  summary:
    "Remove a member; answers 200 with the removed member and `deleted: true` " +
    "(admin; owners only by an owner key; never the last owner)",
  request: { params: MemberParams, headers: IdempotencyHeaderSchema },
  responses: {
    200: json(DeletedMemberSchema, "The removed member, as it was"),
    ...errorResponses(403, 404, 409, 422),
  },
});

export function registerMemberRoutes(app: OpenAPIHono<ApiEnv>) {
  app.openapi(create, (c) =>
    mutation(c, async (s) => {
      const result = await createMember(s.tx, s.orgId, c.req.valid("json"), c.get("auth").role, s.now);
      if ("refused" in result) throw refusal(result.refused);
      const member = memberJson(result.member);
      await audit(s, "member.created", { type: "member", id: member.id }, { after: member });
      return c.json(member, 201);
    }),
  );

  app.openapi(list, (c) =>
    query(c, async (s) => {
      const { limit, starting_after } = c.req.valid("query");
      const result = await listMembers(s.tx, { limit, startingAfter: starting_after });
      return c.json(page({ data: result.data.map(memberJson), hasMore: result.hasMore }), 200);
    }),
  );

  app.openapi(update, (c) =>
    mutation(c, async (s) => {
      const { memberId } = c.req.valid("param");
      const result = await updateMember(
        s.tx,
        s.orgId,
        memberId,
        c.req.valid("json"),
        c.get("auth").role,
        s.now,
      );
      if ("refused" in result) throw refusal(result.refused, memberId);
      await audit(
        s,
        "member.updated",
        { type: "member", id: memberId },
        { before: memberJson(result.before), after: memberJson(result.after) },
      );
      return c.json(memberJson(result.after), 200);
    }),
  );

  app.openapi(remove, (c) =>
    mutation(c, async (s) => {
      const { memberId } = c.req.valid("param");
      const result = await removeMember(s.tx, s.orgId, memberId, c.get("auth").role);
      if ("refused" in result) throw refusal(result.refused, memberId);
      const removed = memberJson(result.removed);
      await audit(s, "member.removed", { type: "member", id: memberId }, { before: removed });
      return c.json({ ...removed, deleted: true as const }, 200);
    }),
  );
}
