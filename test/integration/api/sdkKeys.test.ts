import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { type ApiTenant, addApiKey, bearer, createApiTenant } from "../../support/apiTenant";
import { type Stack, startStack } from "../../support/stack";

let stack: Stack;
beforeAll(async () => {
  stack = await startStack({ consumer: "recorder" });
});
afterAll(() => stack?.dispose());

type SdkKeyJson = { id: string; secret?: string; projectId: string; revokedAt: string | null };

async function newProject(t: ApiTenant): Promise<string> {
  const res = await stack.api("/v1/projects", {
    method: "POST",
    headers: bearer(t.secret),
    body: JSON.stringify({ name: "Web" }),
  });
  return ((await res.json()) as { id: string }).id;
}

describe("SDK keys", () => {
  test("a key created through the API ingests; revoked, it is refused; secrets appear once", async () => {
    const owner = await createApiTenant(stack.db);
    const projectId = await newProject(owner);
    const res = await stack.api(`/v1/projects/${projectId}/sdk-keys`, {
      method: "POST",
      headers: bearer(owner.secret),
    });
    expect(res.status).toBe(201);
    const key = (await res.json()) as SdkKeyJson;
    expect(key.secret).toMatch(/^lp_pk_/);
    expect(key).toMatchObject({ object: "sdk_key", projectId, revokedAt: null });

    expect((await stack.ingest({ eventId: "k1", name: "open" }, { key: key.secret! })).status).toBe(202);

    const list = await stack.api(`/v1/projects/${projectId}/sdk-keys`, { headers: bearer(owner.secret) });
    const listed = (await list.json()) as { data: SdkKeyJson[] };
    expect(listed.data.map((k) => k.id)).toEqual([key.id]);
    expect(JSON.stringify(listed)).not.toContain(key.secret!);

    const revoked = await stack.api(`/v1/projects/${projectId}/sdk-keys/${key.id}/revoke`, {
      method: "POST",
      headers: bearer(owner.secret),
    });
    expect(revoked.status).toBe(200);
    expect(((await revoked.json()) as SdkKeyJson).revokedAt).not.toBeNull();
    expect((await stack.ingest({ eventId: "k2", name: "open" }, { key: key.secret! })).status).toBe(401);

    const audit = await stack.db
      .selectFrom("audit_log")
      .select(["action", "changes"])
      .where("resource_id", "=", key.id)
      .orderBy("occurred_at")
      .execute();
    expect(audit.map((a) => a.action)).toEqual(["sdk_key.created", "sdk_key.revoked"]);
    expect(JSON.stringify(audit)).not.toContain(key.secret!);
  });

  test("read_only cannot create; another org gets 404 and nothing changes", async () => {
    const owner = await createApiTenant(stack.db);
    const projectId = await newProject(owner);
    const readOnly = await addApiKey(stack.db, owner.orgId, "read_only");
    const other = await createApiTenant(stack.db);
    expect(
      (
        await stack.api(`/v1/projects/${projectId}/sdk-keys`, {
          method: "POST",
          headers: bearer(readOnly.secret),
        })
      ).status,
    ).toBe(403);
    expect(
      (
        await stack.api(`/v1/projects/${projectId}/sdk-keys`, {
          method: "POST",
          headers: bearer(other.secret),
        })
      ).status,
    ).toBe(404);
    expect(
      (await stack.api(`/v1/projects/${projectId}/sdk-keys`, { headers: bearer(other.secret) })).status,
    ).toBe(404);
    const keys = await stack.db
      .selectFrom("sdk_keys")
      .select("id")
      .where("project_id", "=", projectId)
      .execute();
    expect(keys).toEqual([]);
  });
});
