import { type OpenAPIHono, z } from "@hono/zod-openapi";
import {
  addMember,
  changeMember,
  dropMember,
  listOrgMembers,
  memberJson,
} from "../../../functions/members/verbs";
import { ROLES } from "../../../shared/roles";
import { requires } from "../access";
import type { ApiEnv } from "../context";
import { mutation, query } from "../handlers";
import {
  apiRoute,
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

// Members are org-wide people data: a project-restricted key can neither list nor manage them.
const create = apiRoute({
  ...requires("admin", { orgWide: true }),
  method: "post",
  path: "/v1/members",
  tags: ["Members"],
  operationId: "createMember",
  summary: "Add a member (admin; only an owner key can add an owner)",
  description:
    "Adds a person to the org with a role. Admin keys or higher; only an owner key may add an owner.",
  request: {
    headers: IdempotencyHeaderSchema,
    body: { content: { "application/json": { schema: CreateMemberSchema } }, required: true },
  },
  responses: { 201: json(MemberSchema, "The member"), ...errorResponses(400, 403, 409, 422) },
});

const list = apiRoute({
  ...requires("read_only", { orgWide: true }),
  method: "get",
  path: "/v1/members",
  tags: ["Members"],
  operationId: "listMembers",
  summary: "List members, newest first",
  description: "Lists the org's members, newest first. Org-wide keys only.",
  request: { query: PageQuerySchema },
  responses: {
    200: json(listOf(MemberSchema, "MemberList"), "A page of members"),
    ...errorResponses(400, 403),
  },
});

const update = apiRoute({
  ...requires("admin", { orgWide: true }),
  method: "patch",
  path: "/v1/members/{memberId}",
  tags: ["Members"],
  operationId: "updateMember",
  summary: "Change a member's role or name (admin; owners only by an owner key; never the last owner's role)",
  description:
    "Changes a member's role or name. Owners can only be changed by an owner key, and the last owner keeps the owner role.",
  request: {
    params: MemberParams,
    headers: IdempotencyHeaderSchema,
    body: { content: { "application/json": { schema: UpdateMemberSchema } }, required: true },
  },
  responses: { 200: json(MemberSchema, "The member"), ...errorResponses(400, 403, 404, 409, 422) },
});

const remove = apiRoute({
  ...requires("admin", { orgWide: true }),
  method: "delete",
  path: "/v1/members/{memberId}",
  tags: ["Members"],
  operationId: "deleteMember",
  summary:
    "Remove a member; answers 200 with the removed member and `deleted: true` " +
    "(admin; owners only by an owner key; never the last owner)",
  description:
    "Removes a member and answers with the member as it was. Owners can only be removed by an owner key; the last owner stays.",
  request: { params: MemberParams, headers: IdempotencyHeaderSchema },
  responses: {
    200: json(DeletedMemberSchema, "The removed member, as it was"),
    ...errorResponses(403, 404, 409, 422),
  },
});

export function registerMemberRoutes(app: OpenAPIHono<ApiEnv>) {
  app.openapi(create, (c) =>
    mutation(c, async (ctx) => c.json(memberJson(await addMember(ctx, c.req.valid("json"))), 201)),
  );

  app.openapi(list, (c) =>
    query(c, async (ctx) => {
      const { limit, starting_after } = c.req.valid("query");
      const result = await listOrgMembers(ctx, { limit, startingAfter: starting_after });
      return c.json(page({ data: result.data.map(memberJson), hasMore: result.hasMore }), 200);
    }),
  );

  app.openapi(update, (c) =>
    mutation(c, async (ctx) => {
      const member = await changeMember(ctx, c.req.valid("param").memberId, c.req.valid("json"));
      return c.json(memberJson(member), 200);
    }),
  );

  app.openapi(remove, (c) =>
    mutation(c, async (ctx) => {
      const removed = await dropMember(ctx, c.req.valid("param").memberId);
      return c.json({ ...memberJson(removed), deleted: true as const }, 200);
    }),
  );
}
