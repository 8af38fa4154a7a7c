import { afterAll, beforeAll, describe, expect, test } from "vitest";
import type { Role } from "../../../shared/roles";
import { type Answer, api, errorDetails, type Method } from "../../support/api";
import { type ApiTenant, addApiKey, createApiTenant } from "../../support/apiTenant";
import type { Member, MemberList } from "../../support/apiTypes";
import { describeRouteSecurity } from "../../support/routeSecurity";
import { type Stack, startStack } from "../../support/stack";

// /v1/members: happy, error and security cases against the API Worker in workerd and real Postgres.

let stack: Stack;
beforeAll(async () => {
  stack = await startStack({ consumer: "recorder" });
});
afterAll(() => stack?.dispose());

/** A call through the typed client: the answer is read with the route's schema (Member, MemberList…). */
function send<Res = unknown>(
  secret: string,
  method: Method,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<Answer<Res>> {
  return api(stack, secret).send<Res>(method, path, body, { headers });
}

async function addMember(
  secret: string,
  body: { email: string; role: Role; name?: string },
  headers: Record<string, string> = {},
): Promise<Member> {
  const response = await send<Member>(secret, "POST", "/v1/members", body, headers);
  expect(response.status).toBe(201);
  return response.body;
}

async function listAll(secret: string): Promise<Member[]> {
  const response = await send<MemberList>(secret, "GET", "/v1/members?limit=100");
  expect(response.status).toBe(200);
  return response.body.data;
}

/** The org's members straight from the database (owner connection), for "nothing changed" checks. */
function memberRows(orgId: string) {
  return stack.db
    .selectFrom("members")
    .select(["id", "email", "name", "role"])
    .where("org_id", "=", orgId)
    .orderBy("id")
    .execute();
}

function memberAudit(orgId: string) {
  return stack.db
    .selectFrom("audit_log")
    .select(["action", "actor_type", "actor_id", "resource_type", "resource_id", "request_id", "changes"])
    .where("org_id", "=", orgId)
    .where("resource_type", "=", "member")
    .orderBy("occurred_at")
    .orderBy("id")
    .execute();
}

/** One request after another: embedded PGlite shares one session, so only the real server takes concurrency. */
async function inSequence(requests: (() => Promise<Answer<unknown>>)[]): Promise<Answer<unknown>[]> {
  const responses: Answer<unknown>[] = [];
  for (const request of requests) responses.push(await request());
  return responses;
}

// Races are only meaningful on the real Postgres server (CI sets TEST_DATABASE_URL): the embedded PGlite
// serves one session to every connection and answers concurrent requests unreliably.
const realPostgres = Boolean(process.env.TEST_DATABASE_URL);

describe("members: happy", () => {
  test("add, list, change role and name, remove — each audited with the key as actor", async () => {
    const owner = await createApiTenant(stack.db);
    const created = await send(owner.secret, "POST", "/v1/members", {
      email: "  Ana.Silva@Example.COM ",
      name: "Ana",
      role: "developer",
    });
    expect(created.status).toBe(201);
    const member = created.body as Member;
    expect(member).toEqual({
      id: expect.stringMatching(/^mem_[1-9A-Za-z]{20}$/),
      object: "member",
      email: "ana.silva@example.com",
      name: "Ana",
      role: "developer",
      createdAt: expect.any(String),
      updatedAt: expect.any(String),
    });
    expect(await memberRows(owner.orgId)).toEqual([
      { id: member.id, email: "ana.silva@example.com", name: "Ana", role: "developer" },
    ]);

    expect(await listAll(owner.secret)).toEqual([member]);

    const patched = await send(owner.secret, "PATCH", `/v1/members/${member.id}`, {
      role: "admin",
      name: "Ana Silva",
    });
    expect(patched.status).toBe(200);
    const updated = patched.body as Member;
    expect(updated).toMatchObject({ id: member.id, role: "admin", name: "Ana Silva", email: member.email });

    const cleared = await send(owner.secret, "PATCH", `/v1/members/${member.id}`, { name: null });
    expect(cleared.body).toMatchObject({ name: null, role: "admin" });

    const removed = await send(owner.secret, "DELETE", `/v1/members/${member.id}`);
    expect(removed.status).toBe(200);
    expect(removed.body).toMatchObject({
      id: member.id,
      object: "member",
      email: "ana.silva@example.com",
      role: "admin",
      deleted: true,
    });
    expect(await memberRows(owner.orgId)).toEqual([]);
    expect(await listAll(owner.secret)).toEqual([]);

    const audit = await memberAudit(owner.orgId);
    expect(audit.map((a) => a.action)).toEqual([
      "member.created",
      "member.updated",
      "member.updated",
      "member.removed",
    ]);
    expect(audit.every((a) => a.actor_type === "api_key" && a.actor_id === owner.keyId)).toBe(true);
    expect(audit.every((a) => a.resource_id === member.id)).toBe(true);
    expect(audit.map((a) => a.request_id)).toEqual(
      [created, patched, cleared, removed].map((r) => r.headers.get("X-Request-Id")),
    );
    expect(audit[0]!.changes).toEqual({ after: member });
    expect(audit[1]!.changes).toMatchObject({
      before: { role: "developer", name: "Ana" },
      after: { role: "admin", name: "Ana Silva" },
    });
    expect(audit[1]!.changes).not.toHaveProperty("before.email");
    expect(audit[2]!.changes).toMatchObject({ before: { name: "Ana Silva" }, after: { name: null } });
    expect(audit[3]!.changes).toEqual({
      before: { ...updated, name: null, updatedAt: expect.any(String) },
    });
  });

  test("list: newest first, limit and starting_after page through every member once", async () => {
    const owner = await createApiTenant(stack.db);
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      // Distinct creation times via the test clock, so "newest first" is observable.
      const at = new Date(Date.UTC(2026, 0, 1, 0, 0, i)).toISOString();
      const m = await addMember(
        owner.secret,
        { email: `person${i}@example.com`, role: "read_only" },
        { "X-Layers-Test-Now": at },
      );
      expect(m.createdAt).toBe(at);
      ids.push(m.id);
    }
    const newestFirst = [...ids].reverse();

    const first = (await send(owner.secret, "GET", "/v1/members?limit=2")).body as MemberList;
    expect(first.data.map((m) => m.id)).toEqual(newestFirst.slice(0, 2));
    expect(first).toMatchObject({ object: "list", hasMore: true, nextCursor: newestFirst[1] });

    const second = (await send(owner.secret, "GET", `/v1/members?limit=2&starting_after=${first.nextCursor}`))
      .body as MemberList;
    expect(second.data.map((m) => m.id)).toEqual(newestFirst.slice(2, 4));
    expect(second.hasMore).toBe(true);

    const last = (await send(owner.secret, "GET", `/v1/members?limit=2&starting_after=${second.nextCursor}`))
      .body as MemberList;
    expect(last.data.map((m) => m.id)).toEqual(newestFirst.slice(4));
    expect(last).toMatchObject({ hasMore: false, nextCursor: null });

    const all = (await send(owner.secret, "GET", "/v1/members")).body as MemberList;
    expect(all.data.map((m) => m.id)).toEqual(newestFirst);
  });

  test("an owner key adds owners and demotes or removes one while another owner remains", async () => {
    const owner = await createApiTenant(stack.db);
    const first = await addMember(owner.secret, { email: "first@example.com", role: "owner" });
    const second = await addMember(owner.secret, { email: "second@example.com", role: "owner" });

    const demoted = await send(owner.secret, "PATCH", `/v1/members/${first.id}`, { role: "admin" });
    expect(demoted.status).toBe(200);
    expect(demoted.body).toMatchObject({ role: "admin" });
    const promoted = await send(owner.secret, "PATCH", `/v1/members/${first.id}`, { role: "owner" });
    expect(promoted.body).toMatchObject({ role: "owner" });
    const removed = await send(owner.secret, "DELETE", `/v1/members/${second.id}`);
    expect(removed.status).toBe(200);
    expect((await memberRows(owner.orgId)).map((m) => [m.id, m.role])).toEqual([[first.id, "owner"]]);
  });

  test("an admin key manages members below owner", async () => {
    const owner = await createApiTenant(stack.db);
    const admin = await addApiKey(stack.db, owner.orgId, "admin");
    const member = await addMember(admin.secret, { email: "dev@example.com", role: "developer" });
    const patched = await send(admin.secret, "PATCH", `/v1/members/${member.id}`, { role: "admin" });
    expect(patched.status).toBe(200);
    const removed = await send(admin.secret, "DELETE", `/v1/members/${member.id}`);
    expect(removed.status).toBe(200);
    const audit = await memberAudit(owner.orgId);
    expect(audit.map((a) => [a.action, a.actor_id])).toEqual([
      ["member.created", admin.keyId],
      ["member.updated", admin.keyId],
      ["member.removed", admin.keyId],
    ]);
  });

  test("a read_only key can list members", async () => {
    const owner = await createApiTenant(stack.db);
    const member = await addMember(owner.secret, { email: "seen@example.com", role: "developer" });
    const readOnly = await addApiKey(stack.db, owner.orgId, "read_only");
    expect((await listAll(readOnly.secret)).map((m) => m.id)).toEqual([member.id]);
  });
});

describe("members: error", () => {
  test.each([
    ["a bad email and role", { email: "not-an-email", role: "boss" }, ["email", "role"]],
    ["no email, no role", { name: "Nobody" }, ["email", "role"]],
    ["an empty name", { email: "a@example.com", role: "admin", name: " " }, ["name"]],
    ["an email too long", { email: `${"a".repeat(320)}@example.com`, role: "admin" }, ["email"]],
    ["an unknown field", { email: "a@example.com", role: "admin", password: "x" }, ["json"]],
  ])("POST with %s → 400 invalid_request listing the fields; nothing stored", async (_, body, fields) => {
    const owner = await createApiTenant(stack.db);
    const response = await send(owner.secret, "POST", "/v1/members", body);
    expect(response.status).toBe(400);
    const error = response.error;
    expect(error.code).toBe("invalid_request");
    const listed = errorDetails(error).map((d) => d.field);
    for (const field of fields) expect(listed).toContain(field);
    expect(await memberRows(owner.orgId)).toEqual([]);
    expect(await memberAudit(owner.orgId)).toEqual([]);
  });

  test.each([
    ["an empty body", {}, "json"],
    ["a bad role", { role: "superuser" }, "role"],
    ["an email change", { email: "new@example.com" }, "json"],
    ["a name too long", { name: "n".repeat(201) }, "name"],
  ])("PATCH with %s → 400 invalid_request; nothing changes", async (_, body, field) => {
    const owner = await createApiTenant(stack.db);
    const member = await addMember(owner.secret, { email: "keep@example.com", role: "developer", name: "K" });
    const response = await send(owner.secret, "PATCH", `/v1/members/${member.id}`, body);
    expect(response.status).toBe(400);
    const error = response.error;
    expect(error.code).toBe("invalid_request");
    expect(errorDetails(error).map((d) => d.field)).toContain(field);
    expect(await memberRows(owner.orgId)).toEqual([
      { id: member.id, email: "keep@example.com", name: "K", role: "developer" },
    ]);
  });

  test.each(["limit=0", "limit=101", "limit=ten"])("GET ?%s → 400 listing limit", async (q) => {
    const owner = await createApiTenant(stack.db);
    const response = await send(owner.secret, "GET", `/v1/members?${q}`);
    expect(response.status).toBe(400);
    const error = response.error;
    expect(error.code).toBe("invalid_request");
    expect(errorDetails(error).map((d) => d.field)).toContain("limit");
  });

  test("malformed JSON → 400, not a 500", async () => {
    const owner = await createApiTenant(stack.db);
    const response = await api(stack, owner.secret).post("/v1/members", undefined, {
      rawBody: '{"email": "a@example.com",',
    });
    expect(response.status).toBe(400);
    expect(response.error.code).toBe("invalid_json");
    expect(await memberRows(owner.orgId)).toEqual([]);
  });

  test("unknown member ids → 404 on PATCH and DELETE", async () => {
    const owner = await createApiTenant(stack.db);
    for (const id of ["mem_doesNotExist1234567", "proj_notAMember"]) {
      const patched = await send(owner.secret, "PATCH", `/v1/members/${id}`, { role: "admin" });
      expect(patched.status).toBe(404);
      expect(patched.error.code).toBe("not_found");
      const removed = await send(owner.secret, "DELETE", `/v1/members/${id}`);
      expect(removed.status).toBe(404);
      expect(removed.error.code).toBe("not_found");
    }
    expect(await memberAudit(owner.orgId)).toEqual([]);
  });

  test("a duplicate email (after trim and lowercase) → 409 conflict; one row", async () => {
    const owner = await createApiTenant(stack.db);
    await addMember(owner.secret, { email: "dup@example.com", role: "developer" });
    const again = await send(owner.secret, "POST", "/v1/members", {
      email: " DUP@Example.com",
      role: "admin",
    });
    expect(again.status).toBe(409);
    expect(again.error.code).toBe("conflict");
    expect(await memberRows(owner.orgId)).toMatchObject([{ email: "dup@example.com", role: "developer" }]);
    expect((await memberAudit(owner.orgId)).map((a) => a.action)).toEqual(["member.created"]);
  });

  test("the same email may be a member of two orgs", async () => {
    const a = await createApiTenant(stack.db);
    const b = await createApiTenant(stack.db);
    await addMember(a.secret, { email: "shared@example.com", role: "developer" });
    await addMember(b.secret, { email: "shared@example.com", role: "developer" });
  });

  test("the org's last owner can be neither demoted nor removed (409); nothing changes", async () => {
    const owner = await createApiTenant(stack.db);
    const only = await addMember(owner.secret, { email: "only@example.com", role: "owner" });
    const demote = await send(owner.secret, "PATCH", `/v1/members/${only.id}`, { role: "admin" });
    expect(demote.status).toBe(409);
    expect(demote.error.code).toBe("conflict");
    const remove = await send(owner.secret, "DELETE", `/v1/members/${only.id}`);
    expect(remove.status).toBe(409);
    expect(remove.error.code).toBe("conflict");
    expect(await memberRows(owner.orgId)).toMatchObject([{ id: only.id, role: "owner" }]);

    // Renaming the last owner, or "changing" it to owner, is no demotion.
    const renamed = await send(owner.secret, "PATCH", `/v1/members/${only.id}`, {
      name: "Only",
      role: "owner",
    });
    expect(renamed.status).toBe(200);
    expect((await memberAudit(owner.orgId)).map((a) => a.action)).toEqual([
      "member.created",
      "member.updated",
    ]);
  });

  test.runIf(realPostgres)(
    "concurrent demotions of the last two owners leave one owner (real Postgres: row lock)",
    async () => {
      const owner = await createApiTenant(stack.db);
      const a = await addMember(owner.secret, { email: "a@example.com", role: "owner" });
      const b = await addMember(owner.secret, { email: "b@example.com", role: "owner" });
      const results = await Promise.all(
        [a, b].map((m) => send(owner.secret, "PATCH", `/v1/members/${m.id}`, { role: "admin" })),
      );
      expect(results.map((r) => r.status).sort()).toEqual([200, 409]);
      const owners = (await memberRows(owner.orgId)).filter((m) => m.role === "owner");
      expect(owners).toHaveLength(1);
    },
  );

  test("Idempotency-Key: a replayed POST returns the same member, marked replayed; one row, one audit", async () => {
    const owner = await createApiTenant(stack.db);
    const headers = { "Idempotency-Key": "add-member-1" };
    const body = { email: "once@example.com", role: "developer" };
    const first = await send(owner.secret, "POST", "/v1/members", body, headers);
    expect(first.status).toBe(201);
    expect(first.headers.get("Idempotent-Replayed")).toBeNull();
    const second = await send(owner.secret, "POST", "/v1/members", body, headers);
    expect(second.status).toBe(201);
    expect(second.headers.get("Idempotent-Replayed")).toBe("true");
    expect(second.body).toEqual(first.body);
    expect(await memberRows(owner.orgId)).toHaveLength(1);
    expect(await memberAudit(owner.orgId)).toHaveLength(1);

    const reused = await send(owner.secret, "POST", "/v1/members", { ...body, role: "admin" }, headers);
    expect(reused.status).toBe(422);
    expect(reused.error.code).toBe("idempotency_key_reused");
    expect(await memberRows(owner.orgId)).toHaveLength(1);
  });

  test.runIf(realPostgres)("Idempotency-Key: 20 identical POSTs at once create one member", async () => {
    const owner = await createApiTenant(stack.db);
    const headers = { "Idempotency-Key": "add-member-burst" };
    const body = { email: "burst@example.com", role: "developer" };
    const responses = await Promise.all(
      Array.from({ length: 20 }, () => send(owner.secret, "POST", "/v1/members", body, headers)),
    );
    for (const r of responses) expect([201, 409]).toContain(r.status);
    const conflicts = responses.filter((r) => r.status === 409).map((r) => r.error.code);
    expect(conflicts.every((c) => c === "idempotency_key_in_use")).toBe(true);
    expect(await memberRows(owner.orgId)).toHaveLength(1);
    expect(await memberAudit(owner.orgId)).toHaveLength(1);
  });
});

// 401 (no, malformed, unknown, revoked, rotated-out, expired keys), 403 for read_only and developer on
// writes and for project-restricted keys (members are org-wide), 404 for another org's member ids, nothing
// changed: the shared suite.
describeRouteSecurity(() => stack, "Members");

describe("members: security", () => {
  test("an admin key cannot add, promote to, change or remove an owner (403); nothing changes", async () => {
    const owner = await createApiTenant(stack.db);
    const boss = await addMember(owner.secret, { email: "boss@example.com", role: "owner" });
    await addMember(owner.secret, { email: "boss2@example.com", role: "owner" });
    const dev = await addMember(owner.secret, { email: "dev@example.com", role: "developer" });
    const admin = await addApiKey(stack.db, owner.orgId, "admin");
    const before = await memberRows(owner.orgId);
    const attempts = [
      () => send(admin.secret, "POST", "/v1/members", { email: "new-owner@example.com", role: "owner" }),
      () => send(admin.secret, "PATCH", `/v1/members/${dev.id}`, { role: "owner" }),
      () => send(admin.secret, "PATCH", `/v1/members/${boss.id}`, { role: "admin" }),
      () => send(admin.secret, "PATCH", `/v1/members/${boss.id}`, { name: "Renamed boss" }),
      () => send(admin.secret, "DELETE", `/v1/members/${boss.id}`),
    ];
    for (const response of await inSequence(attempts)) {
      expect(response.status).toBe(403);
      expect(response.error.code).toBe("forbidden");
    }
    expect(await memberRows(owner.orgId)).toEqual(before);
    expect(await memberAudit(owner.orgId)).toHaveLength(3);
  });

  test("another org's owner key → 404 on this org's member ids, sees none of them; nothing changes", async () => {
    const victim = await createApiTenant(stack.db);
    const member = await addMember(victim.secret, { email: "victim@example.com", role: "owner" });
    await addMember(victim.secret, { email: "victim2@example.com", role: "developer" });
    const attacker: ApiTenant = await createApiTenant(stack.db);
    const before = await memberRows(victim.orgId);

    const patched = await send(attacker.secret, "PATCH", `/v1/members/${member.id}`, { role: "read_only" });
    expect(patched.status).toBe(404);
    expect(patched.error.code).toBe("not_found");
    const removed = await send(attacker.secret, "DELETE", `/v1/members/${member.id}`);
    expect(removed.status).toBe(404);
    expect(await listAll(attacker.secret)).toEqual([]);
    const paged = await send<MemberList>(attacker.secret, "GET", `/v1/members?starting_after=${member.id}`);
    expect(paged.body.data).toEqual([]);
    // Same email in the attacker's own org: its own member, no conflict with (or hint of) the victim's.
    await addMember(attacker.secret, { email: "victim@example.com", role: "developer" });

    expect(await memberRows(victim.orgId)).toEqual(before);
    expect(await memberAudit(victim.orgId)).toHaveLength(2);
  });

  test("member emails never reach the logs", async () => {
    const owner = await createApiTenant(stack.db);
    const email = "private.person@example.com";
    await addMember(owner.secret, { email, role: "developer" });
    await send(owner.secret, "POST", "/v1/members", { email, role: "developer" });
    expect(stack.logs.join("\n")).not.toContain(email);
  });
});
