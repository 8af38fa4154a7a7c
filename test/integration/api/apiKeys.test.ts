import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { api } from "../../support/api";
import { type ApiTenant, addApiKey, createApiTenant } from "../../support/apiTenant";
import type { ApiKey, ApiKeyList, CreatedApiKey, ProjectList } from "../../support/apiTypes";
import { describeRouteSecurity } from "../../support/routeSecurity";
import { type Stack, startStack } from "../../support/stack";

let stack: Stack;
beforeAll(async () => {
  stack = await startStack({ consumer: "recorder" });
});
afterAll(() => stack?.dispose());

const as = (t: ApiTenant | string) => api(stack, typeof t === "string" ? t : t.secret);
/** Whether a secret works right now (or at `now`): a plain read any role may make. */
const works = async (secret: string, now?: string) =>
  (await as(secret).get<ProjectList>("/v1/projects", now ? { now } : {})).status;

describe("API keys: happy", () => {
  test("create shows the secret once; list never shows it; the new key works", async () => {
    const owner = await createApiTenant(stack.db);
    const res = await as(owner).post<unknown, CreatedApiKey>("/v1/api-keys", {
      name: "CI",
      role: "developer",
    });
    expect(res.status).toBe(201);
    const created = res.body;
    expect(created.secret).toMatch(/^lp_live_/);
    expect(created).toMatchObject({ object: "api_key", role: "developer", mode: "live", revokedAt: null });
    const list = await as(owner).get<ApiKeyList>("/v1/api-keys");
    expect(list.body.data.map((k) => k.id)).toContain(created.id);
    expect(list.text).not.toContain(created.secret!);
    expect(await works(created.secret!)).toBe(200);
    const stored = await stack.db
      .selectFrom("api_keys")
      .selectAll()
      .where("id", "=", created.id)
      .executeTakeFirstOrThrow();
    expect(JSON.stringify(stored)).not.toContain(created.secret!);
  });

  test("rotation: the old secret works through the grace period, then stops (injected clock)", async () => {
    const owner = await createApiTenant(stack.db);
    const admin = await addApiKey(stack.db, owner.orgId, "admin");
    const t0 = "2026-11-23T10:00:00.000Z";
    const res = await as(owner).post<unknown, CreatedApiKey>(
      `/v1/api-keys/${admin.keyId}/rotate`,
      { gracePeriodSeconds: 3600 },
      { now: t0 },
    );
    expect(res.status).toBe(201);
    const next = res.body;
    expect(next.role).toBe("admin");
    expect(await works(admin.secret, "2026-11-23T10:59:59.000Z")).toBe(200);
    expect(await works(admin.secret, "2026-11-23T11:00:00.000Z")).toBe(401);
    expect(await works(next.secret!, "2026-11-23T11:00:00.000Z")).toBe(200);
    const audit = await stack.db
      .selectFrom("audit_log")
      .select("action")
      .where("org_id", "=", owner.orgId)
      .execute();
    expect(audit.map((a) => a.action)).toEqual(
      expect.arrayContaining(["api_key.rotated", "api_key.created"]),
    );
  });

  test("rotation without a grace period and revocation stop the old secret at once", async () => {
    const owner = await createApiTenant(stack.db);
    const a = await addApiKey(stack.db, owner.orgId, "developer");
    const b = await addApiKey(stack.db, owner.orgId, "developer");
    expect((await as(owner).post(`/v1/api-keys/${a.keyId}/rotate`, {})).status).toBe(201);
    expect(await works(a.secret)).toBe(401);
    const revoked = await as(owner).post<never, ApiKey>(`/v1/api-keys/${b.keyId}/revoke`);
    expect(revoked.status).toBe(200);
    expect(revoked.body.revokedAt).not.toBeNull();
    expect(await works(b.secret)).toBe(401);
    expect((await as(owner).post(`/v1/api-keys/${b.keyId}/revoke`)).status).toBe(409);
  });
});

// 401 (no, malformed, unknown, revoked, rotated-out, expired keys), 403 for every role below admin and for
// project-restricted keys, 404 for another org's key ids, nothing changed: the shared suite.
describeRouteSecurity(() => stack, "API keys");

describe("API keys: security", () => {
  test("a key cannot mint a role above its own; nothing is created", async () => {
    const owner = await createApiTenant(stack.db);
    const admin = await addApiKey(stack.db, owner.orgId, "admin");
    const denied = await as(admin).post("/v1/api-keys", { name: "x", role: "owner" });
    expect(denied.status).toBe(403);
    expect(denied.error.code).toBe("forbidden");
    const count = await stack.db
      .selectFrom("api_keys")
      .select("id")
      .where("org_id", "=", owner.orgId)
      .execute();
    expect(count).toHaveLength(2);
  });

  test("revoking needs the same grant as creating: an admin cannot revoke an owner key; nothing changes", async () => {
    const owner = await createApiTenant(stack.db);
    const secondOwner = await addApiKey(stack.db, owner.orgId, "owner");
    const admin = await addApiKey(stack.db, owner.orgId, "admin");
    const denied = await as(admin).post(`/v1/api-keys/${secondOwner.keyId}/revoke`);
    expect(denied.status).toBe(403);
    expect(denied.error.code).toBe("forbidden");
    expect(await works(secondOwner.secret)).toBe(200);
    const row = await stack.db
      .selectFrom("api_keys")
      .select("revoked_at")
      .where("id", "=", secondOwner.keyId)
      .executeTakeFirstOrThrow();
    expect(row.revoked_at).toBeNull();
    // An admin may still revoke keys at or below its own role.
    const developer = await addApiKey(stack.db, owner.orgId, "developer");
    expect((await as(admin).post(`/v1/api-keys/${developer.keyId}/revoke`)).status).toBe(200);
  });

  test("the org's last live owner key cannot be revoked (409); with a second owner key it can", async () => {
    const owner = await createApiTenant(stack.db);
    const selfRevoke = await as(owner).post(`/v1/api-keys/${owner.keyId}/revoke`);
    expect(selfRevoke.status).toBe(409);
    expect(selfRevoke.error.code).toBe("conflict");
    expect(await works(owner.secret)).toBe(200);

    // An owner key in its rotation grace period still works, so it counts as live until it expires.
    const second = await addApiKey(stack.db, owner.orgId, "owner");
    const rotated = await as(second).post<unknown, CreatedApiKey>(`/v1/api-keys/${second.keyId}/rotate`, {
      gracePeriodSeconds: 600,
    });
    expect(rotated.status).toBe(201);
    const successor = rotated.body;
    // Three owner keys exist (owner, second in grace, successor): revoking two of them leaves one.
    expect((await as(owner).post(`/v1/api-keys/${successor.id}/revoke`)).status).toBe(200);
    expect((await as(owner).post(`/v1/api-keys/${second.keyId}/revoke`)).status).toBe(200);
    expect((await as(owner).post(`/v1/api-keys/${owner.keyId}/revoke`)).status).toBe(409);
    const live = await stack.db
      .selectFrom("api_keys")
      .select("id")
      .where("org_id", "=", owner.orgId)
      .where("role", "=", "owner")
      .where("revoked_at", "is", null)
      .execute();
    expect(live.map((k) => k.id)).toEqual([owner.keyId]);
  });
});
