import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { createSdkKey } from "../../../functions/sdkKeys/store";
import { withTenant } from "../../../shared/db";
import { api } from "../../support/api";
import { addApiKey, createApiTenant } from "../../support/apiTenant";
import type { Project, ProjectList } from "../../support/apiTypes";
import { describeRouteSecurity } from "../../support/routeSecurity";
import { type Stack, startStack, waitFor } from "../../support/stack";

// /v1/projects, security cases: who may call (401), what a role may do (403), another org's ids (404, as if
// they did not exist) and project-restricted keys, through the shared route suite; then what is particular
// to projects: lists across orgs and projects, the per-key rate limit, and archived projects at ingest.

let stack: Stack;
beforeAll(async () => {
  stack = await startStack({ consumer: "recorder" });
});
afterAll(() => stack?.dispose());

async function createProjectViaApi(secret: string, name: string): Promise<Project> {
  const created = await api(stack, secret).post<{ name: string }, Project>("/v1/projects", { name });
  expect(created.status).toBe(201);
  return created.body;
}

const projectRows = (orgId: string) =>
  stack.db
    .selectFrom("projects")
    .select(["id", "name", "event_retention_days", "archived_at", "updated_at"])
    .where("org_id", "=", orgId)
    .orderBy("id")
    .execute();

// 401, 403 per role, 404 across orgs and projects, 403 for a restricted key creating a project, and
// nothing changed after each refusal: the shared suite, on every /v1/projects route.
describeRouteSecurity(() => stack, "Projects");

describe("projects: security", () => {
  test("another org's key never sees this org's project in its list, also when paging from its id", async () => {
    const victim = await createApiTenant(stack.db);
    const project = await createProjectViaApi(victim.secret, "Victim app");
    const attacker = await createApiTenant(stack.db);
    const own = await createProjectViaApi(attacker.secret, "Attacker app");
    for (const query of ["", `?starting_after=${project.id}`]) {
      const listed = await api(stack, attacker.secret).get<ProjectList>(`/v1/projects${query}`);
      expect(listed.body.data.map((p) => p.id)).not.toContain(project.id);
    }
    const listed = await api(stack, attacker.secret).get<ProjectList>("/v1/projects");
    expect(listed.body.data.map((p) => p.id)).toEqual([own.id]);
    const audit = await stack.db
      .selectFrom("audit_log")
      .select(["action", "org_id"])
      .where("resource_id", "=", project.id)
      .execute();
    expect(audit).toEqual([{ action: "project.created", org_id: victim.orgId }]);
  });

  test("a read_only key reads the project and the list", async () => {
    const owner = await createApiTenant(stack.db);
    const project = await createProjectViaApi(owner.secret, "Target");
    const readOnly = api(stack, (await addApiKey(stack.db, owner.orgId, "read_only")).secret);
    expect((await readOnly.get<Project>(`/v1/projects/${project.id}`)).body).toMatchObject({
      id: project.id,
      name: "Target",
    });
    const listed = await readOnly.get<ProjectList>("/v1/projects");
    expect(listed.body.data.map((p) => p.id)).toEqual([project.id]);
  });

  test("a project-restricted key lists only its project, and changes it without touching the other", async () => {
    const owner = await createApiTenant(stack.db);
    const mine = await createProjectViaApi(owner.secret, "Mine");
    const other = await createProjectViaApi(owner.secret, "Other");
    const restricted = api(stack, (await addApiKey(stack.db, owner.orgId, "developer", mine.id)).secret);
    const before = await projectRows(owner.orgId);

    const listed = await restricted.get<ProjectList>("/v1/projects");
    expect(listed.body).toMatchObject({ hasMore: false, nextCursor: null });
    expect(listed.body.data.map((p) => p.id)).toEqual([mine.id]);

    expect((await restricted.get<Project>(`/v1/projects/${mine.id}`)).status).toBe(200);
    const renamed = await restricted.patch<{ name: string }, Project>(`/v1/projects/${mine.id}`, {
      name: "Mine v2",
    });
    expect(renamed.status).toBe(200);
    const after = await projectRows(owner.orgId);
    expect(after.find((p) => p.id === other.id)).toEqual(before.find((p) => p.id === other.id));
    expect(after.find((p) => p.id === mine.id)?.name).toBe("Mine v2");
  });

  test("rate limit per key: RateLimit-* headers count down, the 4th call is 429; another key is unaffected", async () => {
    const limited = await startStack({ consumer: "recorder", apiVars: { API_RATE_LIMIT_PER_MINUTE: "3" } });
    try {
      const owner = await createApiTenant(limited.db);
      const second = await addApiKey(limited.db, owner.orgId, "owner");
      // A fixed clock: 3 a minute is one request earned every 20 s (rateLimit.test.ts covers the algorithm).
      const t = Date.parse("2026-11-23T12:00:10.000Z");
      const at = (ms: number) => new Date(t + ms);
      const ownerCalls = api(limited, owner.secret);

      for (const [remaining, reset] of [
        ["2", "20"],
        ["1", "40"],
        ["0", "60"],
      ]) {
        const response = await ownerCalls.get<ProjectList>("/v1/projects", { now: at(0) });
        expect(response.status).toBe(200);
        expect(response.headers.get("RateLimit-Limit")).toBe("3");
        expect(response.headers.get("RateLimit-Remaining")).toBe(remaining);
        expect(response.headers.get("RateLimit-Reset")).toBe(reset);
      }

      // The 4th is refused, also for a write with an Idempotency-Key: nothing is created or stored.
      const refused = await ownerCalls.post(
        "/v1/projects",
        { name: "Too many" },
        { now: at(0), idempotencyKey: "rl-key" },
      );
      expect(refused.status).toBe(429);
      expect(refused.error.code).toBe("rate_limited");
      expect(refused.headers.get("RateLimit-Remaining")).toBe("0");
      expect(refused.headers.get("RateLimit-Limit")).toBe("3");
      const retryAfter = Number(refused.headers.get("Retry-After"));
      expect(retryAfter).toBe(20);

      const other = await api(limited, second.secret).get<ProjectList>("/v1/projects", { now: at(0) });
      expect(other.status).toBe(200);
      expect(other.headers.get("RateLimit-Remaining")).toBe("2");

      const projects = () =>
        limited.db.selectFrom("projects").select("name").where("org_id", "=", owner.orgId).execute();
      expect(await projects()).toEqual([]);

      // After Retry-After the key works again, and the 429 did not bind the Idempotency-Key.
      const later = await ownerCalls.post<{ name: string }, Project>(
        "/v1/projects",
        { name: "Later" },
        { now: at(retryAfter * 1000), idempotencyKey: "rl-key" },
      );
      expect(later.status).toBe(201);
      expect(later.headers.get("RateLimit-Remaining")).toBe("0");
      expect(await projects()).toEqual([{ name: "Later" }]);
    } finally {
      await limited.dispose();
    }
  });

  test("an archived project refuses ingest (403 project_archived); unarchived, it accepts again", async () => {
    const owner = await createApiTenant(stack.db);
    const project = await createProjectViaApi(owner.secret, "Ingesting app");
    const sdkKey = await withTenant(stack.db, owner.orgId, (tx) => createSdkKey(tx, owner.orgId, project.id));
    await stack.takeRecorded();

    const before = await stack.ingest({ eventId: "before-archive", name: "open" }, { key: sdkKey.secret });
    expect(before.status).toBe(202);

    const archived = await api(stack, owner.secret).post<never, Project>(
      `/v1/projects/${project.id}/archive`,
    );
    expect(archived.status).toBe(200);
    const refused = await stack.ingest({ eventId: "while-archived", name: "open" }, { key: sdkKey.secret });
    expect(refused.status).toBe(403);
    expect(((await refused.json()) as { error: { code: string } }).error.code).toBe("project_archived");

    const unarchived = await api(stack, owner.secret).post<never, Project>(
      `/v1/projects/${project.id}/unarchive`,
    );
    expect(unarchived.status).toBe(200);
    const after = await stack.ingest({ eventId: "after-unarchive", name: "open" }, { key: sdkKey.secret });
    expect(after.status).toBe(202);

    // What reached the queue: the events sent while the project was live, never the refused one.
    const recorded: unknown[] = [];
    await waitFor(async () => {
      recorded.push(...(await stack.takeRecorded()));
      return JSON.stringify(recorded).includes("after-unarchive") ? true : undefined;
    });
    const text = JSON.stringify(recorded);
    expect(text).toContain("before-archive");
    expect(text).not.toContain("while-archived");
  });
});
