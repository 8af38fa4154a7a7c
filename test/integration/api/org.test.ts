import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { createProject } from "../../../functions/projects/store";
import { withTenant } from "../../../shared/db";
import { type ApiTenant, addApiKey, bearer, createApiTenant } from "../../support/apiTenant";
import { type Stack, startStack } from "../../support/stack";

// GET/PATCH /v1/org: happy, error and security cases against the API Worker in workerd and real Postgres.

let stack: Stack;
beforeAll(async () => {
  stack = await startStack({ consumer: "recorder" });
});
afterAll(() => stack?.dispose());

type ErrorJson = { error: { code: string; message: string; details?: { field: string; message: string }[] } };

const getOrg = (secret: string) => stack.api("/v1/org", { headers: bearer(secret) });
const patchOrg = (secret: string, body: unknown, headers: Record<string, string> = {}) =>
  stack.api("/v1/org", { method: "PATCH", headers: bearer(secret, headers), body: JSON.stringify(body) });

async function orgName(orgId: string): Promise<string> {
  const row = await stack.db
    .selectFrom("organizations")
    .select("name")
    .where("id", "=", orgId)
    .executeTakeFirstOrThrow();
  return row.name;
}

function orgAudit(orgId: string) {
  return stack.db
    .selectFrom("audit_log")
    .select(["action", "actor_type", "actor_id", "resource_type", "resource_id", "request_id", "changes"])
    .where("org_id", "=", orgId)
    .where("action", "=", "org.updated")
    .orderBy("occurred_at")
    .execute();
}

describe("org: happy", () => {
  test("GET answers the key's own org", async () => {
    const owner = await createApiTenant(stack.db);
    const response = await getOrg(owner.secret);
    expect(response.status).toBe(200);
    const body = (await response.json()) as { createdAt: string };
    expect(body).toEqual({
      id: owner.orgId,
      object: "org",
      name: "API test org",
      createdAt: expect.any(String),
    });
    expect(new Date(body.createdAt).toISOString()).toBe(body.createdAt);
  });

  test("GET works for every role, read_only included", async () => {
    const owner = await createApiTenant(stack.db);
    const readOnly = await addApiKey(stack.db, owner.orgId, "read_only");
    expect(await (await getOrg(readOnly.secret)).json()).toMatchObject({ id: owner.orgId });
  });

  test("PATCH renames (trimmed), GET shows it, and one audit row records before/after", async () => {
    const owner = await createApiTenant(stack.db);
    const patched = await patchOrg(owner.secret, { name: "  Acme Inc.  " });
    expect(patched.status).toBe(200);
    expect(await patched.json()).toMatchObject({ id: owner.orgId, object: "org", name: "Acme Inc." });
    expect(await (await getOrg(owner.secret)).json()).toMatchObject({ name: "Acme Inc." });
    expect(await orgName(owner.orgId)).toBe("Acme Inc.");

    const audit = await orgAudit(owner.orgId);
    expect(audit).toEqual([
      {
        action: "org.updated",
        actor_type: "api_key",
        actor_id: owner.keyId,
        resource_type: "org",
        resource_id: owner.orgId,
        request_id: patched.headers.get("X-Request-Id"),
        changes: { before: { name: "API test org" }, after: { name: "Acme Inc." } },
      },
    ]);
  });

  test("PATCH with an Idempotency-Key replays the first answer and audits once", async () => {
    const owner = await createApiTenant(stack.db);
    const headers = { "Idempotency-Key": "rename-org-1" };
    const first = await patchOrg(owner.secret, { name: "Renamed" }, headers);
    const second = await patchOrg(owner.secret, { name: "Renamed" }, headers);
    expect(second.status).toBe(200);
    expect(second.headers.get("Idempotent-Replayed")).toBe("true");
    expect(await second.json()).toEqual(await first.json());
    expect(await orgAudit(owner.orgId)).toHaveLength(1);
  });
});

describe("org: error", () => {
  test.each([
    ["empty body", {}, "json"],
    ["empty name", { name: "   " }, "name"],
    ["name too long", { name: "x".repeat(201) }, "name"],
    ["name not a string", { name: 42 }, "name"],
    ["unknown field", { name: "ok", plan: "enterprise" }, "json"],
  ])("PATCH with %s → 400 invalid_request listing the field; nothing changes", async (_, body, field) => {
    const owner = await createApiTenant(stack.db);
    const response = await patchOrg(owner.secret, body);
    expect(response.status).toBe(400);
    const error = (await response.json()) as ErrorJson;
    expect(error.error.code).toBe("invalid_request");
    expect(error.error.details?.map((d) => d.field)).toContain(field);
    expect(await orgName(owner.orgId)).toBe("API test org");
    expect(await orgAudit(owner.orgId)).toHaveLength(0);
  });

  test("PATCH with malformed JSON → 400, not a 500", async () => {
    const owner = await createApiTenant(stack.db);
    const response = await stack.api("/v1/org", {
      method: "PATCH",
      headers: bearer(owner.secret),
      body: "{not json",
    });
    expect(response.status).toBe(400);
    expect(((await response.json()) as { error: { code: string } }).error.code).toBe("invalid_json");
    expect(await orgName(owner.orgId)).toBe("API test org");
  });

  test("an Idempotency-Key reused with another body → 422 and the second change never happens", async () => {
    const owner = await createApiTenant(stack.db);
    const headers = { "Idempotency-Key": "rename-org-2" };
    expect((await patchOrg(owner.secret, { name: "First" }, headers)).status).toBe(200);
    const reused = await patchOrg(owner.secret, { name: "Second" }, headers);
    expect(reused.status).toBe(422);
    expect(((await reused.json()) as ErrorJson).error.code).toBe("idempotency_key_reused");
    expect(await orgName(owner.orgId)).toBe("First");
  });
});

describe("org: security", () => {
  test("no key, a malformed header, an unknown key or a revoked key → 401", async () => {
    const owner = await createApiTenant(stack.db);
    const revoked = await addApiKey(stack.db, owner.orgId, "owner");
    await stack.db
      .updateTable("api_keys")
      .set({ revoked_at: new Date() })
      .where("id", "=", revoked.keyId)
      .execute();
    const attempts: Record<string, string>[] = [
      { "Content-Type": "application/json" },
      { Authorization: `Basic ${owner.secret}`, "Content-Type": "application/json" },
      bearer(`lp_live_${"A".repeat(32)}`),
      bearer(revoked.secret),
    ];
    for (const headers of attempts) {
      const read = await stack.api("/v1/org", { headers });
      expect(read.status).toBe(401);
      expect(((await read.json()) as ErrorJson).error.code).toBe("unauthorized");
      const write = await stack.api("/v1/org", {
        method: "PATCH",
        headers,
        body: JSON.stringify({ name: "Hijacked" }),
      });
      expect(write.status).toBe(401);
    }
    expect(await orgName(owner.orgId)).toBe("API test org");
  });

  test.each([
    "admin",
    "developer",
    "read_only",
  ] as const)("a %s key cannot PATCH (403); nothing changes", async (role) => {
    const owner = await createApiTenant(stack.db);
    const key = await addApiKey(stack.db, owner.orgId, role);
    const response = await patchOrg(key.secret, { name: "Not allowed" });
    expect(response.status).toBe(403);
    expect(((await response.json()) as ErrorJson).error.code).toBe("forbidden");
    expect(await orgName(owner.orgId)).toBe("API test org");
    expect(await orgAudit(owner.orgId)).toHaveLength(0);
  });

  test("a project-restricted owner key can read its org but not change it (403)", async () => {
    const owner = await createApiTenant(stack.db);
    const project = await withTenant(stack.db, owner.orgId, (tx) =>
      createProject(tx, owner.orgId, { name: "Restricted app" }),
    );
    const restricted = await addApiKey(stack.db, owner.orgId, "owner", project.id);
    expect(await (await getOrg(restricted.secret)).json()).toMatchObject({ id: owner.orgId });
    const response = await patchOrg(restricted.secret, { name: "Not allowed" });
    expect(response.status).toBe(403);
    expect(((await response.json()) as ErrorJson).error.code).toBe("forbidden");
    expect(await orgName(owner.orgId)).toBe("API test org");
  });

  test("another org's owner key only ever sees and changes its own org", async () => {
    const victim: ApiTenant = await createApiTenant(stack.db);
    const other: ApiTenant = await createApiTenant(stack.db);
    expect(await (await getOrg(other.secret)).json()).toMatchObject({ id: other.orgId });
    expect((await patchOrg(other.secret, { name: "Other renamed" })).status).toBe(200);
    expect(await orgName(other.orgId)).toBe("Other renamed");
    expect(await orgName(victim.orgId)).toBe("API test org");
    expect(await orgAudit(victim.orgId)).toHaveLength(0);
  });
});
