import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { type ApiTenant, addApiKey, bearer, createApiTenant } from "../../support/apiTenant";
import { type Stack, startStack } from "../../support/stack";

let stack: Stack;
beforeAll(async () => {
  stack = await startStack({ consumer: "recorder" });
});
afterAll(() => stack?.dispose());

type KeyJson = {
  id: string;
  secret?: string;
  role: string;
  expiresAt: string | null;
  revokedAt: string | null;
};
const at = (iso: string) => ({ "X-Layers-Test-Now": iso });

async function post(t: ApiTenant, path: string, body?: unknown, headers: Record<string, string> = {}) {
  return stack.api(path, {
    method: "POST",
    headers: bearer(t.secret, headers),
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
}

describe("API keys: happy", () => {
  test("create shows the secret once; list never shows it; the new key works", async () => {
    const owner = await createApiTenant(stack.db);
    const res = await post(owner, "/v1/api-keys", { name: "CI", role: "developer" });
    expect(res.status).toBe(201);
    const created = (await res.json()) as KeyJson;
    expect(created.secret).toMatch(/^lp_live_/);
    expect(created).toMatchObject({ object: "api_key", role: "developer", mode: "live", revokedAt: null });
    const list = (await (await stack.api("/v1/api-keys", { headers: bearer(owner.secret) })).json()) as {
      data: KeyJson[];
    };
    expect(list.data.map((k) => k.id)).toContain(created.id);
    expect(JSON.stringify(list)).not.toContain(created.secret!);
    const projects = await stack.api("/v1/projects", { headers: bearer(created.secret!) });
    expect(projects.status).toBe(200);
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
    const res = await post(owner, `/v1/api-keys/${admin.keyId}/rotate`, { gracePeriodSeconds: 3600 }, at(t0));
    expect(res.status).toBe(201);
    const next = (await res.json()) as KeyJson;
    expect(next.role).toBe("admin");
    const get = (secret: string, now: string) =>
      stack.api("/v1/projects", { headers: bearer(secret, at(now)) });
    expect((await get(admin.secret, "2026-11-23T10:59:59.000Z")).status).toBe(200);
    expect((await get(admin.secret, "2026-11-23T11:00:00.000Z")).status).toBe(401);
    expect((await get(next.secret!, "2026-11-23T11:00:00.000Z")).status).toBe(200);
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
    expect((await post(owner, `/v1/api-keys/${a.keyId}/rotate`, {})).status).toBe(201);
    expect((await stack.api("/v1/projects", { headers: bearer(a.secret) })).status).toBe(401);
    const revoked = await post(owner, `/v1/api-keys/${b.keyId}/revoke`);
    expect(revoked.status).toBe(200);
    expect(((await revoked.json()) as KeyJson).revokedAt).not.toBeNull();
    expect((await stack.api("/v1/projects", { headers: bearer(b.secret) })).status).toBe(401);
    expect((await post(owner, `/v1/api-keys/${b.keyId}/revoke`)).status).toBe(409);
  });
});

describe("API keys: security", () => {
  test("a key cannot mint a role above its own; developers cannot manage keys; other orgs see 404", async () => {
    const owner = await createApiTenant(stack.db);
    const admin = await addApiKey(stack.db, owner.orgId, "admin");
    const developer = await addApiKey(stack.db, owner.orgId, "developer");
    expect((await post(admin, "/v1/api-keys", { name: "x", role: "owner" })).status).toBe(403);
    expect((await post(developer, "/v1/api-keys", { name: "x", role: "read_only" })).status).toBe(403);
    const other = await createApiTenant(stack.db);
    expect((await post(other, `/v1/api-keys/${developer.keyId}/revoke`)).status).toBe(404);
    expect((await stack.api("/v1/projects", { headers: bearer(developer.secret) })).status).toBe(200);
    const count = await stack.db
      .selectFrom("api_keys")
      .select("id")
      .where("org_id", "=", owner.orgId)
      .execute();
    expect(count).toHaveLength(3);
  });

  test("revoking needs the same grant as creating: an admin cannot revoke an owner key; nothing changes", async () => {
    const owner = await createApiTenant(stack.db);
    const secondOwner = await addApiKey(stack.db, owner.orgId, "owner");
    const admin = await addApiKey(stack.db, owner.orgId, "admin");
    const denied = await post(admin, `/v1/api-keys/${secondOwner.keyId}/revoke`);
    expect(denied.status).toBe(403);
    expect(((await denied.json()) as { error: { code: string } }).error.code).toBe("forbidden");
    expect((await stack.api("/v1/projects", { headers: bearer(secondOwner.secret) })).status).toBe(200);
    const row = await stack.db
      .selectFrom("api_keys")
      .select("revoked_at")
      .where("id", "=", secondOwner.keyId)
      .executeTakeFirstOrThrow();
    expect(row.revoked_at).toBeNull();
    // An admin may still revoke keys at or below its own role.
    const developer = await addApiKey(stack.db, owner.orgId, "developer");
    expect((await post(admin, `/v1/api-keys/${developer.keyId}/revoke`)).status).toBe(200);
  });

  test("the org's last live owner key cannot be revoked (409); with a second owner key it can", async () => {
    const owner = await createApiTenant(stack.db);
    const selfRevoke = await post(owner, `/v1/api-keys/${owner.keyId}/revoke`);
    expect(selfRevoke.status).toBe(409);
    expect(((await selfRevoke.json()) as { error: { code: string } }).error.code).toBe("conflict");
    expect((await stack.api("/v1/projects", { headers: bearer(owner.secret) })).status).toBe(200);

    // An owner key in its rotation grace period still works, so it counts as live until it expires.
    const second = await addApiKey(stack.db, owner.orgId, "owner");
    const rotated = await post(second, `/v1/api-keys/${second.keyId}/rotate`, { gracePeriodSeconds: 600 });
    expect(rotated.status).toBe(201);
    const successor = (await rotated.json()) as KeyJson;
    // Three owner keys exist (owner, second in grace, successor): revoking two of them leaves one.
    expect((await post(owner, `/v1/api-keys/${successor.id}/revoke`)).status).toBe(200);
    expect((await post(owner, `/v1/api-keys/${second.keyId}/revoke`)).status).toBe(200);
    expect((await post(owner, `/v1/api-keys/${owner.keyId}/revoke`)).status).toBe(409);
    const live = await stack.db
      .selectFrom("api_keys")
      .select("id")
      .where("org_id", "=", owner.orgId)
      .where("role", "=", "owner")
      .where("revoked_at", "is", null)
      .execute();
    expect(live.map((k) => k.id)).toEqual([owner.keyId]);
  });

  test("no key, a malformed key, an unknown key → 401 with the error shape", async () => {
    const attempts: Record<string, string>[] = [
      {},
      { Authorization: "Bearer nope" },
      { Authorization: "Bearer lp_live_0000000000000000000000000000" },
    ];
    for (const headers of attempts) {
      const res = await stack.api("/v1/api-keys", { headers });
      expect(res.status).toBe(401);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe("unauthorized");
    }
  });
});
