import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { createSdkKey } from "../../../functions/sdkKeys/store";
import { withTenant } from "../../../shared/db";
import { type ApiTenant, addApiKey, bearer, createApiTenant } from "../../support/apiTenant";
import { type Stack, startStack, waitFor } from "../../support/stack";

// /v1/projects, security cases: who may call (401), what a role may do (403), another org's ids (404, as if
// they did not exist), project-restricted keys, the per-key rate limit, and archived projects at ingest.
// Every refusal must leave the projects and the audit log as they were.

let stack: Stack;
beforeAll(async () => {
  stack = await startStack({ consumer: "recorder" });
});
afterAll(() => stack?.dispose());

interface ProjectJson {
  id: string;
  object: "project";
  name: string;
  archived: boolean;
}
interface ProjectList {
  object: "list";
  data: ProjectJson[];
  hasMore: boolean;
  nextCursor: string | null;
}
type ErrorJson = { error: { code: string; message: string } };

function send(
  stackOrSelf: Stack,
  headers: Record<string, string>,
  method: string,
  path: string,
  body?: unknown,
): Promise<Response> {
  return stackOrSelf.api(path, {
    method,
    headers,
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
}

const as = (secret: string, method: string, path: string, body?: unknown) =>
  send(stack, bearer(secret), method, path, body);

async function errorCode(response: Response): Promise<string> {
  return ((await response.json()) as ErrorJson).error.code;
}

async function createProjectViaApi(secret: string, name: string): Promise<ProjectJson> {
  const response = await as(secret, "POST", "/v1/projects", { name });
  expect(response.status).toBe(201);
  return (await response.json()) as ProjectJson;
}

/** Every call a partner can make on projects; `id` is the project they aim at. */
function projectCalls(id: string): { method: string; path: string; body?: unknown; write: boolean }[] {
  return [
    { method: "GET", path: "/v1/projects", write: false },
    { method: "GET", path: `/v1/projects/${id}`, write: false },
    { method: "POST", path: "/v1/projects", body: { name: "Intruder" }, write: true },
    {
      method: "PATCH",
      path: `/v1/projects/${id}`,
      body: { name: "Renamed", eventRetentionDays: 30 },
      write: true,
    },
    { method: "POST", path: `/v1/projects/${id}/archive`, write: true },
    { method: "POST", path: `/v1/projects/${id}/unarchive`, write: true },
  ];
}

/** An org's projects and audit rows straight from the database (owner connection). */
async function snapshot(orgId: string) {
  const projects = await stack.db
    .selectFrom("projects")
    .select(["id", "name", "event_retention_days", "archived_at", "updated_at"])
    .where("org_id", "=", orgId)
    .orderBy("id")
    .execute();
  const audit = await stack.db
    .selectFrom("audit_log")
    .select(["id", "action", "resource_id", "actor_id"])
    .where("org_id", "=", orgId)
    .orderBy("id")
    .execute();
  return { projects, audit };
}

describe("projects: security", () => {
  test("no key, a malformed key, an unknown key or a revoked key → 401 on every call; nothing changes", async () => {
    const owner = await createApiTenant(stack.db);
    const project = await createProjectViaApi(owner.secret, "Target");
    const revoked = await addApiKey(stack.db, owner.orgId, "owner");
    const revoke = await as(owner.secret, "POST", `/v1/api-keys/${revoked.keyId}/revoke`);
    expect(revoke.status).toBe(200);
    const before = await snapshot(owner.orgId);

    const json = { "Content-Type": "application/json" };
    const attempts: [string, Record<string, string>][] = [
      ["no key", json],
      ["no Bearer scheme", { ...json, Authorization: owner.secret }],
      ["Basic auth", { ...json, Authorization: `Basic ${btoa(`${owner.secret}:`)}` }],
      ["a truncated key", bearer(owner.secret.slice(0, 12))],
      ["an SDK-style key", bearer(`lp_pk_${"A".repeat(32)}`)],
      ["an unknown key", bearer(`lp_live_${"B".repeat(32)}`)],
      ["a revoked key", bearer(revoked.secret)],
    ];
    for (const [label, headers] of attempts) {
      for (const call of projectCalls(project.id)) {
        const response = await send(stack, headers, call.method, call.path, call.body);
        expect(response.status, `${label}: ${call.method} ${call.path}`).toBe(401);
        expect(await errorCode(response)).toBe("unauthorized");
      }
    }
    expect(await snapshot(owner.orgId)).toEqual(before);
  });

  test("a read_only key → 403 on POST, PATCH, archive and unarchive (nothing changes) but 200 on GET", async () => {
    const owner = await createApiTenant(stack.db);
    const project = await createProjectViaApi(owner.secret, "Target");
    const readOnly = await addApiKey(stack.db, owner.orgId, "read_only");
    const before = await snapshot(owner.orgId);
    for (const call of projectCalls(project.id)) {
      const response = await as(readOnly.secret, call.method, call.path, call.body);
      if (call.write) {
        expect(response.status, `${call.method} ${call.path}`).toBe(403);
        expect(await errorCode(response)).toBe("forbidden");
      } else {
        expect(response.status, `${call.method} ${call.path}`).toBe(200);
      }
    }
    const got = await as(readOnly.secret, "GET", `/v1/projects/${project.id}`);
    expect(await got.json()).toMatchObject({ id: project.id, name: "Target" });
    const listed = (await (await as(readOnly.secret, "GET", "/v1/projects")).json()) as ProjectList;
    expect(listed.data.map((p) => p.id)).toEqual([project.id]);
    expect(await snapshot(owner.orgId)).toEqual(before);
  });

  test("another org's key → 404 on this org's project id, sees none of its projects; nothing changes", async () => {
    const victim = await createApiTenant(stack.db);
    const project = await createProjectViaApi(victim.secret, "Victim app");
    const attacker: ApiTenant = await createApiTenant(stack.db);
    const own = await createProjectViaApi(attacker.secret, "Attacker app");
    const victimBefore = await snapshot(victim.orgId);
    const attackerBefore = await snapshot(attacker.orgId);

    for (const call of projectCalls(project.id).filter((c) => c.path.includes(project.id))) {
      const response = await as(attacker.secret, call.method, call.path, call.body);
      expect(response.status, `${call.method} ${call.path}`).toBe(404);
      expect(await errorCode(response)).toBe("not_found");
    }
    // Its own list holds only its own project, also when paging from the victim's id.
    for (const query of ["", `?starting_after=${project.id}`]) {
      const listed = (await (await as(attacker.secret, "GET", `/v1/projects${query}`)).json()) as ProjectList;
      expect(listed.data.map((p) => p.id)).not.toContain(project.id);
    }
    const listed = (await (await as(attacker.secret, "GET", "/v1/projects")).json()) as ProjectList;
    expect(listed.data.map((p) => p.id)).toEqual([own.id]);

    expect(await snapshot(victim.orgId)).toEqual(victimBefore);
    expect(await snapshot(attacker.orgId)).toEqual(attackerBefore);
    const audit = await stack.db
      .selectFrom("audit_log")
      .select(["action", "org_id"])
      .where("resource_id", "=", project.id)
      .execute();
    expect(audit).toEqual([{ action: "project.created", org_id: victim.orgId }]);
  });

  test("a project-restricted key sees only its project, 404 for the other, 403 on creating one", async () => {
    const owner = await createApiTenant(stack.db);
    const mine = await createProjectViaApi(owner.secret, "Mine");
    const other = await createProjectViaApi(owner.secret, "Other");
    const restricted = await addApiKey(stack.db, owner.orgId, "developer", mine.id);
    const before = await snapshot(owner.orgId);

    const listed = (await (await as(restricted.secret, "GET", "/v1/projects")).json()) as ProjectList;
    expect(listed).toMatchObject({ hasMore: false, nextCursor: null });
    expect(listed.data.map((p) => p.id)).toEqual([mine.id]);

    for (const call of projectCalls(other.id).filter((c) => c.path.includes(other.id))) {
      const response = await as(restricted.secret, call.method, call.path, call.body);
      expect(response.status, `${call.method} ${call.path}`).toBe(404);
      expect(await errorCode(response)).toBe("not_found");
    }
    const created = await as(restricted.secret, "POST", "/v1/projects", { name: "Sneaky" });
    expect(created.status).toBe(403);
    expect(await errorCode(created)).toBe("forbidden");
    expect(await snapshot(owner.orgId)).toEqual(before);

    // Its own project it may read and change.
    expect((await as(restricted.secret, "GET", `/v1/projects/${mine.id}`)).status).toBe(200);
    const renamed = await as(restricted.secret, "PATCH", `/v1/projects/${mine.id}`, { name: "Mine v2" });
    expect(renamed.status).toBe(200);
    const after = await snapshot(owner.orgId);
    expect(after.projects.find((p) => p.id === other.id)).toEqual(
      before.projects.find((p) => p.id === other.id),
    );
    expect(after.audit.filter((a) => a.resource_id === other.id).map((a) => a.action)).toEqual([
      "project.created",
    ]);
  });

  test("rate limit per key: RateLimit-* headers count down, the 4th call is 429; another key is unaffected", async () => {
    const limited = await startStack({ consumer: "recorder", apiVars: { API_RATE_LIMIT_PER_MINUTE: "3" } });
    try {
      const owner = await createApiTenant(limited.db);
      const second = await addApiKey(limited.db, owner.orgId, "owner");
      // A fixed clock: 3 a minute is one request earned every 20 s (rateLimit.test.ts covers the algorithm).
      const t = Date.parse("2026-11-23T12:00:10.000Z");
      const at = (secret: string, ms: number, extra: Record<string, string> = {}) =>
        bearer(secret, { "X-Layers-Test-Now": new Date(t + ms).toISOString(), ...extra });

      for (const [remaining, reset] of [
        ["2", "20"],
        ["1", "40"],
        ["0", "60"],
      ]) {
        const response = await send(limited, at(owner.secret, 0), "GET", "/v1/projects");
        expect(response.status).toBe(200);
        expect(response.headers.get("RateLimit-Limit")).toBe("3");
        expect(response.headers.get("RateLimit-Remaining")).toBe(remaining);
        expect(response.headers.get("RateLimit-Reset")).toBe(reset);
      }

      // The 4th is refused, also for a write with an Idempotency-Key: nothing is created or stored.
      const refused = await send(
        limited,
        at(owner.secret, 0, { "Idempotency-Key": "rl-key" }),
        "POST",
        "/v1/projects",
        {
          name: "Too many",
        },
      );
      expect(refused.status).toBe(429);
      expect(await errorCode(refused)).toBe("rate_limited");
      expect(refused.headers.get("RateLimit-Remaining")).toBe("0");
      expect(refused.headers.get("RateLimit-Limit")).toBe("3");
      const retryAfter = Number(refused.headers.get("Retry-After"));
      expect(retryAfter).toBe(20);

      const other = await send(limited, at(second.secret, 0), "GET", "/v1/projects");
      expect(other.status).toBe(200);
      expect(other.headers.get("RateLimit-Remaining")).toBe("2");

      const projects = () =>
        limited.db.selectFrom("projects").select("name").where("org_id", "=", owner.orgId).execute();
      expect(await projects()).toEqual([]);

      // After Retry-After the key works again, and the 429 did not bind the Idempotency-Key.
      const later = await send(
        limited,
        at(owner.secret, retryAfter * 1000, { "Idempotency-Key": "rl-key" }),
        "POST",
        "/v1/projects",
        { name: "Later" },
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

    const archived = await as(owner.secret, "POST", `/v1/projects/${project.id}/archive`);
    expect(archived.status).toBe(200);
    const refused = await stack.ingest({ eventId: "while-archived", name: "open" }, { key: sdkKey.secret });
    expect(refused.status).toBe(403);
    expect(await errorCode(refused)).toBe("project_archived");

    const unarchived = await as(owner.secret, "POST", `/v1/projects/${project.id}/unarchive`);
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
