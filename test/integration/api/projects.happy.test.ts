import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { type ApiTenant, bearer, createApiTenant } from "../../support/apiTenant";
import { type Stack, startStack } from "../../support/stack";

let stack: Stack;
let owner: ApiTenant;
beforeAll(async () => {
  stack = await startStack({ consumer: "recorder" });
  owner = await createApiTenant(stack.db);
});
afterAll(() => stack?.dispose());

describe("projects", () => {
  test("create, get, list, update, archive, unarchive — each audited", async () => {
    const created = await stack.api("/v1/projects", {
      method: "POST",
      headers: bearer(owner.secret),
      body: JSON.stringify({ name: "iOS app" }),
    });
    expect(created.status).toBe(201);
    const project = (await created.json()) as { id: string; eventRetentionDays: number; archived: boolean };
    expect(project).toMatchObject({
      object: "project",
      name: "iOS app",
      eventRetentionDays: 400,
      archived: false,
    });
    expect(project.id).toMatch(/^proj_/);

    const got = await stack.api(`/v1/projects/${project.id}`, { headers: bearer(owner.secret) });
    expect(await got.json()).toEqual(project);

    const patched = await stack.api(`/v1/projects/${project.id}`, {
      method: "PATCH",
      headers: bearer(owner.secret),
      body: JSON.stringify({ eventRetentionDays: 90 }),
    });
    expect(patched.status).toBe(200);
    expect(await patched.json()).toMatchObject({ eventRetentionDays: 90, name: "iOS app" });

    const archived = await stack.api(`/v1/projects/${project.id}/archive`, {
      method: "POST",
      headers: bearer(owner.secret),
    });
    expect(await archived.json()).toMatchObject({ archived: true });
    const unarchived = await stack.api(`/v1/projects/${project.id}/unarchive`, {
      method: "POST",
      headers: bearer(owner.secret),
    });
    expect(await unarchived.json()).toMatchObject({ archived: false, archivedAt: null });

    const list = await stack.api("/v1/projects?limit=10", { headers: bearer(owner.secret) });
    expect(list.headers.get("RateLimit-Limit")).toBe("600");
    expect(await list.json()).toMatchObject({
      object: "list",
      data: [{ id: project.id }],
      hasMore: false,
      nextCursor: null,
    });

    const audit = await stack.db
      .selectFrom("audit_log")
      .select(["action", "actor_id", "changes"])
      .where("resource_id", "=", project.id)
      .orderBy("occurred_at")
      .execute();
    expect(audit.map((a) => a.action)).toEqual([
      "project.created",
      "project.updated",
      "project.archived",
      "project.unarchived",
    ]);
    expect(audit[1]!.changes).toMatchObject({
      before: { eventRetentionDays: 400 },
      after: { eventRetentionDays: 90 },
    });
    expect(audit.every((a) => a.actor_id === owner.keyId)).toBe(true);
  });
});
