import { sql } from "kysely";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { api, errorDetails, type Method } from "../../support/api";
import { type ApiTenant, addApiKey, createApiTenant } from "../../support/apiTenant";
import type { AuditList } from "../../support/apiTypes";
import { describeRouteSecurity } from "../../support/routeSecurity";
import { sha256 } from "../../support/sha256";
import { type Stack, startStack } from "../../support/stack";

// GET /v1/audit-log against the API Worker in workerd and real Postgres: every change made through the API
// is listed with its actor, request id and diff; filters, pagination, tenancy and roles.

let stack: Stack;
beforeAll(async () => {
  stack = await startStack({ consumer: "recorder" });
});
afterAll(() => stack?.dispose());

/** A call through the typed client (answers checked against the route's schema), as plain JSON to inspect. */
async function send(
  t: ApiTenant,
  method: Method,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<{ status: number; json: Record<string, unknown>; requestId: string }> {
  const answer = await api(stack, t.secret).send(method, path, body, { headers });
  const requestId = answer.headers.get("X-Request-Id");
  expect(requestId).toBeTruthy();
  return {
    status: answer.status,
    json: JSON.parse(answer.text) as Record<string, unknown>,
    requestId: requestId!,
  };
}

async function created(t: ApiTenant, path: string, body?: unknown, headers: Record<string, string> = {}) {
  const result = await send(t, "POST", path, body, headers);
  expect(result.status, JSON.stringify(result.json)).toBe(201);
  return { ...result, id: result.json.id as string };
}

async function auditPage(t: ApiTenant, params: Record<string, string> = {}): Promise<AuditList> {
  const response = await api(stack, t.secret).get<AuditList>(`/v1/audit-log?${new URLSearchParams(params)}`);
  expect(response.status, response.text).toBe(200);
  return response.body;
}

const ids = (list: AuditList) => list.data.map((e) => e.id);
const at = (iso: string) => ({ "X-Layers-Test-Now": iso });

describe("audit log: every change through the API", () => {
  test("projects, API keys and members: actor, request id and before/after diff", async () => {
    const owner = await createApiTenant(stack.db);
    const project = await created(owner, "/v1/projects", { name: "Audited app" });
    const patched = await send(owner, "PATCH", `/v1/projects/${project.id}`, { eventRetentionDays: 90 });
    expect(patched.status).toBe(200);
    const archived = await send(owner, "POST", `/v1/projects/${project.id}/archive`);
    expect(archived.status).toBe(200);
    const key = await created(owner, "/v1/api-keys", { name: "CI", role: "developer" });
    const rotated = await created(owner, `/v1/api-keys/${key.id}/rotate`, { gracePeriodSeconds: 60 });
    const revoked = await send(owner, "POST", `/v1/api-keys/${rotated.id}/revoke`);
    expect(revoked.status).toBe(200);
    const member = await created(owner, "/v1/members", { email: "ana@example.com", role: "developer" });
    const promoted = await send(owner, "PATCH", `/v1/members/${member.id}`, { role: "admin" });
    expect(promoted.status).toBe(200);
    const removed = await send(owner, "DELETE", `/v1/members/${member.id}`);
    expect(removed.status).toBe(200);

    const list = await auditPage(owner, { actor_id: owner.keyId, limit: "100" });
    const expected: [string, string, string, string][] = [
      ["project.created", "project", project.id, project.requestId],
      ["project.updated", "project", project.id, patched.requestId],
      ["project.archived", "project", project.id, archived.requestId],
      ["api_key.created", "api_key", key.id, key.requestId],
      ["api_key.created", "api_key", rotated.id, rotated.requestId],
      ["api_key.rotated", "api_key", key.id, rotated.requestId],
      ["api_key.revoked", "api_key", rotated.id, revoked.requestId],
      ["member.created", "member", member.id, member.requestId],
      ["member.updated", "member", member.id, promoted.requestId],
      ["member.removed", "member", member.id, removed.requestId],
    ];
    expect(list.data).toHaveLength(expected.length);
    for (const [action, type, id, requestId] of expected) {
      const event = list.data.find((e) => e.action === action && e.resource.id === id);
      expect(event, `${action} ${id}`).toMatchObject({
        object: "audit_event",
        actor: { type: "api_key", id: owner.keyId },
        resource: { type, id },
        requestId,
      });
      expect(event!.id).toMatch(/^aud_/);
    }
    // Newest first.
    const times = list.data.map((e) => Date.parse(e.occurredAt));
    expect(times).toEqual([...times].sort((a, b) => b - a));

    const byAction = (action: string, id: string) =>
      list.data.find((e) => e.action === action && e.resource.id === id)!.changes;
    expect(byAction("project.created", project.id)).toEqual({
      after: expect.objectContaining({ id: project.id, name: "Audited app", eventRetentionDays: 400 }),
    });
    expect(byAction("project.updated", project.id)).toMatchObject({
      before: { eventRetentionDays: 400 },
      after: { eventRetentionDays: 90 },
    });
    // A diff holds only what changed.
    expect(byAction("project.updated", project.id).after).not.toHaveProperty("name");
    expect(byAction("project.archived", project.id)).toMatchObject({
      before: { archived: false, archivedAt: null },
      after: { archived: true },
    });
    expect(byAction("api_key.rotated", key.id)).toMatchObject({
      before: { rotatedTo: null, expiresAt: null },
      after: { rotatedTo: rotated.id },
    });
    expect(byAction("api_key.revoked", rotated.id)).toMatchObject({
      before: { revokedAt: null },
      after: { revokedAt: expect.any(String) },
    });
    expect(byAction("member.updated", member.id)).toMatchObject({
      before: { role: "developer" },
      after: { role: "admin" },
    });
    const removal = byAction("member.removed", member.id);
    expect(removal).toMatchObject({ before: { id: member.id, role: "admin" } });
    expect(removal).not.toHaveProperty("after");

    // No secret (nor its stored hash) in any audit row, in the database or in the API's answer.
    const secrets = [key.json.secret, rotated.json.secret] as string[];
    expect(secrets.every((s) => s.startsWith("lp_live_"))).toBe(true);
    const { rows } = await sql<{ changes: string }>`
      select changes::text as changes from audit_log where org_id = ${owner.orgId}`.execute(stack.db);
    expect(rows.length).toBeGreaterThanOrEqual(expected.length);
    const stored = rows.map((r) => r.changes).join("\n");
    const answered = JSON.stringify(list);
    for (const text of [stored, answered]) {
      expect(text).not.toContain("key_sha256");
      expect(text).not.toContain("keySha256");
      expect(text).not.toContain('"secret"');
      for (const secret of [...secrets, owner.secret]) {
        expect(text).not.toContain(secret);
        expect(text).not.toContain(sha256(secret));
      }
    }
  });
});

describe("audit log: filters and pagination", () => {
  test("action, resource, actor and a from (inclusive) / to (exclusive) time range", async () => {
    const owner = await createApiTenant(stack.db);
    const developer = await addApiKey(stack.db, owner.orgId, "developer");
    const t = ["2025-03-01T10:00:00.000Z", "2025-03-01T11:00:00.000Z", "2025-03-01T12:00:00.000Z"];
    const a = await created(owner, "/v1/projects", { name: "A" }, at(t[0]!));
    const b = await created(owner, "/v1/projects", { name: "B" }, at(t[1]!));
    const c = await created(owner, "/v1/projects", { name: "C" }, at(t[2]!));
    const update = await send(
      developer,
      "PATCH",
      `/v1/projects/${b.id}`,
      { name: "B2" },
      at("2025-03-01T13:00:00Z"),
    );
    expect(update.status).toBe(200);
    const auditIdOf = async (action: string, resourceId: string) => {
      const list = await auditPage(owner, { action, resource_id: resourceId });
      expect(list.data).toHaveLength(1);
      return list.data[0]!.id;
    };
    const [createdA, createdB, createdC, updatedB] = [
      await auditIdOf("project.created", a.id),
      await auditIdOf("project.created", b.id),
      await auditIdOf("project.created", c.id),
      await auditIdOf("project.updated", b.id),
    ];

    expect(ids(await auditPage(owner, { action: "project.updated" }))).toEqual([updatedB]);
    expect(ids(await auditPage(owner, { resource_type: "project" }))).toEqual([
      updatedB,
      createdC,
      createdB,
      createdA,
    ]);
    expect(ids(await auditPage(owner, { resource_type: "project", resource_id: b.id }))).toEqual([
      updatedB,
      createdB,
    ]);
    expect(ids(await auditPage(owner, { actor_id: developer.keyId }))).toEqual([updatedB]);
    expect((await auditPage(owner, { actor_id: developer.keyId })).data[0]).toMatchObject({
      actor: { type: "api_key", id: developer.keyId },
      requestId: update.requestId,
      changes: { before: { name: "B" }, after: { name: "B2" } },
    });
    // The bootstrap wrote the owner key's own creation (actor "system"): resource_type api_key finds it.
    const keyEvents = await auditPage(owner, { resource_type: "api_key" });
    expect(keyEvents.data.map((e) => [e.action, e.actor.type])).toEqual(
      expect.arrayContaining([["api_key.created", "system"]]),
    );
    expect(keyEvents.data.every((e) => e.resource.type === "api_key")).toBe(true);
    expect((await auditPage(owner, { resource_type: "member" })).data).toEqual([]);

    expect(ids(await auditPage(owner, { from: t[1]!, to: t[2]! }))).toEqual([createdB]);
    expect(
      ids(await auditPage(owner, { from: "2025-03-01T11:00:00Z", to: "2025-03-01T12:00:00.001Z" })),
    ).toEqual([createdC, createdB]);
    expect(ids(await auditPage(owner, { to: t[1]! }))).toEqual([createdA]);
    // Offsets are honoured: [10:30+02:00, 12:30+02:00) is [08:30Z, 10:30Z).
    expect(
      ids(await auditPage(owner, { from: "2025-03-01T10:30:00+02:00", to: "2025-03-01T12:30:00+02:00" })),
    ).toEqual([createdA]);
    expect(ids(await auditPage(owner, { from: t[1]!, action: "project.created" }))).toEqual([
      createdC,
      createdB,
    ]);
  });

  test("bad filters are a 400 naming the field", async () => {
    const owner = await createApiTenant(stack.db);
    const cases: [string, string][] = [
      ["from=yesterday", "from"],
      ["to=2025-13-01T00:00:00Z", "to"],
      ["from=2025-03-02T00:00:00Z&to=2025-03-01T00:00:00Z", "to"],
      ["limit=101", "limit"],
      ["limit=0", "limit"],
    ];
    for (const [query, field] of cases) {
      const response = await api(stack, owner.secret).get(`/v1/audit-log?${query}`);
      expect(response.status, query).toBe(400);
      expect(response.error.code).toBe("invalid_request");
      expect(errorDetails(response.error).map((d) => d.field)).toContain(field);
    }
  });

  test("25 rows in pages of 10: three pages, newest first, no duplicates, no gaps", async () => {
    const owner = await createApiTenant(stack.db);
    // Three rows share each second: the (occurred_at, id) cursor must break ties.
    for (let i = 0; i < 25; i++) {
      const second = String(Math.floor(i / 3)).padStart(2, "0");
      await created(owner, "/v1/projects", { name: `P${i}` }, at(`2025-04-01T00:00:${second}.000Z`));
    }
    const pages: AuditList[] = [];
    let cursor: string | null = null;
    do {
      const params: Record<string, string> = { resource_type: "project", limit: "10" };
      if (cursor) params.starting_after = cursor;
      const current = await auditPage(owner, params);
      pages.push(current);
      cursor = current.nextCursor;
      expect(pages.length).toBeLessThanOrEqual(3);
    } while (cursor);

    expect(pages.map((p) => p.data.length)).toEqual([10, 10, 5]);
    expect(pages.map((p) => p.hasMore)).toEqual([true, true, false]);
    expect(pages[0]!.nextCursor).toBe(pages[0]!.data.at(-1)!.id);
    const all = pages.flatMap((p) => p.data);
    expect(new Set(all.map((e) => e.id)).size).toBe(25);
    const rows = await stack.db
      .selectFrom("audit_log")
      .select("id")
      .where("org_id", "=", owner.orgId)
      .where("action", "=", "project.created")
      .orderBy("occurred_at", "desc")
      .orderBy("id", "desc")
      .execute();
    expect(all.map((e) => e.id)).toEqual(rows.map((r) => r.id));
    const times = all.map((e) => Date.parse(e.occurredAt));
    expect(times).toEqual([...times].sort((x, y) => y - x));
    // The default page is 20.
    expect((await auditPage(owner, { resource_type: "project" })).data).toHaveLength(20);
    // A cursor that is not one of the org's rows finds nothing.
    expect(await auditPage(owner, { starting_after: "aud_doesnotexist000000" })).toMatchObject({
      data: [],
      hasMore: false,
      nextCursor: null,
    });
  });
});

// 401 (no, malformed, unknown, revoked, rotated-out, expired keys), 403 for read_only, developer and
// project-restricted keys, nothing changed: the shared suite.
describeRouteSecurity(() => stack, "Audit log");

describe("audit log: security", () => {
  test("another org's audit rows never appear, by listing, by filter or by cursor", async () => {
    const mine = await createApiTenant(stack.db);
    const theirs = await createApiTenant(stack.db);
    const myProject = await created(mine, "/v1/projects", { name: "Mine" });
    const theirProject = await created(theirs, "/v1/projects", { name: "Theirs" });
    const theirList = await auditPage(theirs, { limit: "100" });
    expect(theirList.data.map((e) => e.resource.id)).toContain(theirProject.id);

    const myList = await auditPage(mine, { limit: "100" });
    expect(myList.data.map((e) => e.resource.id)).toContain(myProject.id);
    const theirIds = new Set(theirList.data.map((e) => e.id));
    expect(myList.data.filter((e) => theirIds.has(e.id))).toEqual([]);
    expect(JSON.stringify(myList)).not.toContain(theirProject.id);
    expect(JSON.stringify(myList)).not.toContain(theirs.keyId);
    expect((await auditPage(mine, { resource_id: theirProject.id })).data).toEqual([]);
    expect((await auditPage(mine, { actor_id: theirs.keyId })).data).toEqual([]);
    expect((await auditPage(mine, { starting_after: theirList.data[0]!.id })).data).toEqual([]);
  });

  test("an admin key lists the org's changes", async () => {
    const owner = await createApiTenant(stack.db);
    const project = await created(owner, "/v1/projects", { name: "Scoped" });
    const admin = await addApiKey(stack.db, owner.orgId, "admin");
    expect((await auditPage(admin)).data.map((e) => e.resource.id)).toContain(project.id);
  });
});
