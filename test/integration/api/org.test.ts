import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { createProject } from "../../../functions/projects/store";
import { withTenant } from "../../../shared/db";
import { api, errorDetails } from "../../support/api";
import { type ApiTenant, addApiKey, createApiTenant } from "../../support/apiTenant";
import type { Org } from "../../support/apiTypes";
import { describeRouteSecurity } from "../../support/routeSecurity";
import { type Stack, startStack } from "../../support/stack";

// GET/PATCH /v1/org: happy, error and security cases against the API Worker in workerd and real Postgres.

let stack: Stack;
beforeAll(async () => {
  stack = await startStack({ consumer: "recorder" });
});
afterAll(() => stack?.dispose());

const getOrg = (secret: string) => api(stack, secret).get<Org>("/v1/org");
const patchOrg = (secret: string, body: unknown, idempotencyKey?: string) =>
  api(stack, secret).patch<unknown, Org>("/v1/org", body, idempotencyKey ? { idempotencyKey } : {});

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
    const body = response.body;
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
    expect(await (await getOrg(readOnly.secret)).body).toMatchObject({ id: owner.orgId });
  });

  test("PATCH renames (trimmed), GET shows it, and one audit row records before/after", async () => {
    const owner = await createApiTenant(stack.db);
    const patched = await patchOrg(owner.secret, { name: "  Acme Inc.  " });
    expect(patched.status).toBe(200);
    expect(patched.body).toMatchObject({ id: owner.orgId, object: "org", name: "Acme Inc." });
    expect((await getOrg(owner.secret)).body).toMatchObject({ name: "Acme Inc." });
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
    const first = await patchOrg(owner.secret, { name: "Renamed" }, "rename-org-1");
    const second = await patchOrg(owner.secret, { name: "Renamed" }, "rename-org-1");
    expect(second.status).toBe(200);
    expect(second.headers.get("Idempotent-Replayed")).toBe("true");
    expect(second.body).toEqual(first.body);
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
    expect(response.error.code).toBe("invalid_request");
    expect(errorDetails(response.error).map((d) => d.field)).toContain(field);
    expect(await orgName(owner.orgId)).toBe("API test org");
    expect(await orgAudit(owner.orgId)).toHaveLength(0);
  });

  test("PATCH with malformed JSON → 400, not a 500", async () => {
    const owner = await createApiTenant(stack.db);
    const response = await api(stack, owner.secret).patch("/v1/org", undefined, { rawBody: "{not json" });
    expect(response.status).toBe(400);
    expect(response.error.code).toBe("invalid_json");
    expect(await orgName(owner.orgId)).toBe("API test org");
  });

  test("an Idempotency-Key reused with another body → 422 and the second change never happens", async () => {
    const owner = await createApiTenant(stack.db);
    expect((await patchOrg(owner.secret, { name: "First" }, "rename-org-2")).status).toBe(200);
    const reused = await patchOrg(owner.secret, { name: "Second" }, "rename-org-2");
    expect(reused.status).toBe(422);
    expect(reused.error.code).toBe("idempotency_key_reused");
    expect(await orgName(owner.orgId)).toBe("First");
  });
});

// 401 (no, malformed, unknown, revoked, rotated-out, expired keys), 403 for admin, developer and read_only
// on PATCH and for a project-restricted key, nothing changed: the shared suite.
describeRouteSecurity(() => stack, "Org");

describe("org: security", () => {
  test("a project-restricted owner key reads its own org", async () => {
    const owner = await createApiTenant(stack.db);
    const project = await withTenant(stack.db, owner.orgId, (tx) =>
      createProject(tx, owner.orgId, { name: "Restricted app" }),
    );
    const restricted = await addApiKey(stack.db, owner.orgId, "owner", project.id);
    expect((await getOrg(restricted.secret)).body).toMatchObject({ id: owner.orgId });
  });

  test("another org's owner key only ever sees and changes its own org", async () => {
    const victim: ApiTenant = await createApiTenant(stack.db);
    const other: ApiTenant = await createApiTenant(stack.db);
    expect((await getOrg(other.secret)).body).toMatchObject({ id: other.orgId });
    expect((await patchOrg(other.secret, { name: "Other renamed" })).status).toBe(200);
    expect(await orgName(other.orgId)).toBe("Other renamed");
    expect(await orgName(victim.orgId)).toBe("API test org");
    expect(await orgAudit(victim.orgId)).toHaveLength(0);
  });
});
