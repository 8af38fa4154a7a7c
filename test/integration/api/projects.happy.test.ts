import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { type Api, api } from "../../support/api";
import { type ApiTenant, createApiTenant } from "../../support/apiTenant";
import type { Project, ProjectList } from "../../support/apiTypes";
import { type Stack, startStack } from "../../support/stack";

let stack: Stack;
let owner: ApiTenant;
let partner: Api;
beforeAll(async () => {
  stack = await startStack({ consumer: "recorder" });
  owner = await createApiTenant(stack.db);
  partner = api(stack, owner.secret);
});
afterAll(() => stack?.dispose());

describe("projects", () => {
  test("create, get, list, update, archive, unarchive — each audited", async () => {
    const created = await partner.post<{ name: string }, Project>("/v1/projects", { name: "iOS app" });
    expect(created.status).toBe(201);
    const project = created.body;
    expect(project).toMatchObject({
      object: "project",
      name: "iOS app",
      eventRetentionDays: 400,
      archived: false,
    });
    expect(project.id).toMatch(/^proj_/);

    expect((await partner.get<Project>(`/v1/projects/${project.id}`)).body).toEqual(project);

    const patched = await partner.patch<{ eventRetentionDays: number }, Project>(
      `/v1/projects/${project.id}`,
      {
        eventRetentionDays: 90,
      },
    );
    expect(patched.status).toBe(200);
    expect(patched.body).toMatchObject({ eventRetentionDays: 90, name: "iOS app" });

    const archived = await partner.post<never, Project>(`/v1/projects/${project.id}/archive`);
    expect(archived.body).toMatchObject({ archived: true });
    const unarchived = await partner.post<never, Project>(`/v1/projects/${project.id}/unarchive`);
    expect(unarchived.body).toMatchObject({ archived: false, archivedAt: null });

    const list = await partner.get<ProjectList>("/v1/projects?limit=10");
    expect(list.headers.get("RateLimit-Limit")).toBe("600");
    expect(list.body).toMatchObject({
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
