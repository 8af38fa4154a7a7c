import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { createProject } from "../../../functions/projects/store";
import { withTenant } from "../../../shared/db";
import { type Answer, api, type Method } from "../../support/api";
import { type ApiTenant, addApiKey, createApiTenant } from "../../support/apiTenant";
import type { ErrorBody, Project } from "../../support/apiTypes";
import { type Stack, startStack } from "../../support/stack";

// Idempotency-Key on the partner API: scope org + API key + key, replay of the first answer, 422 on reuse
// with another request, 409 while in flight, 24 h lifetime, and nothing stored for answers given before the
// idempotency layer (401/403 by role, validation 400s). Real Worker in workerd, real Postgres.

let stack: Stack;
beforeAll(async () => {
  stack = await startStack({ consumer: "recorder" });
});
afterAll(() => stack?.dispose());

// Races are only meaningful on the real Postgres server (CI sets TEST_DATABASE_URL): the embedded PGlite
// serves one session to every connection and answers concurrent requests unreliably.
const realPostgres = Boolean(process.env.TEST_DATABASE_URL);

/** A call through the typed client (most answers here are projects); a string body is sent as is. */
function send<Res = Project>(
  secret: string,
  method: Method,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<Answer<Res>> {
  return api(stack, secret).send<Res>(method, path, typeof body === "string" ? undefined : body, {
    headers,
    ...(typeof body === "string" ? { rawBody: body } : {}),
  });
}

const withKey = (key: string, extra: Record<string, string> = {}) => ({ "Idempotency-Key": key, ...extra });

function projectRows(orgId: string) {
  return stack.db
    .selectFrom("projects")
    .select(["id", "name", "event_retention_days", "archived_at", "updated_at"])
    .where("org_id", "=", orgId)
    .orderBy("id")
    .execute();
}

function projectAudit(orgId: string) {
  return stack.db
    .selectFrom("audit_log")
    .select(["action", "resource_id", "request_id"])
    .where("org_id", "=", orgId)
    .where("resource_type", "=", "project")
    .orderBy("occurred_at")
    .orderBy("id")
    .execute();
}

function storedKeys(orgId: string) {
  return stack.db
    .selectFrom("idempotency_keys")
    .select(["idempotency_key", "state", "response_status"])
    .where("org_id", "=", orgId)
    .orderBy("idempotency_key")
    .execute();
}

function createdProject(response: Answer<Project>): Project {
  expect(response.status, response.text).toBe(201);
  return response.body;
}

describe("Idempotency-Key: replay", () => {
  test("same key + same request → the first answer again, marked replayed; one row, one audit", async () => {
    const owner = await createApiTenant(stack.db);
    const body = { name: "Once", eventRetentionDays: 90 };
    const first = await send(owner.secret, "POST", "/v1/projects", body, withKey("create-once"));
    expect(first.status).toBe(201);
    expect(first.headers.get("Idempotent-Replayed")).toBeNull();
    const firstText = first.text;
    const firstBody = JSON.parse(firstText) as Project;

    const second = await send(owner.secret, "POST", "/v1/projects", body, withKey("create-once"));
    expect(second.status).toBe(201);
    expect(second.headers.get("Idempotent-Replayed")).toBe("true");
    expect(second.headers.get("Content-Type")).toContain("application/json");
    // Byte for byte, key order included: clients may hash or sign what they received.
    expect(second.text).toBe(firstText);
    // Each attempt is its own request, with its own id.
    expect(second.headers.get("X-Request-Id")).not.toBe(first.headers.get("X-Request-Id"));

    const rows = await projectRows(owner.orgId);
    expect(rows.map((r) => r.id)).toEqual([firstBody.id]);
    const audit = await projectAudit(owner.orgId);
    expect(audit).toEqual([
      { action: "project.created", resource_id: firstBody.id, request_id: first.headers.get("X-Request-Id") },
    ]);
    expect(await storedKeys(owner.orgId)).toEqual([
      { idempotency_key: "create-once", state: "completed", response_status: 201 },
    ]);
  });

  test("without a key, two identical POSTs create two projects (the key is what deduplicates)", async () => {
    const owner = await createApiTenant(stack.db);
    createdProject(await send(owner.secret, "POST", "/v1/projects", { name: "Twice" }));
    createdProject(await send(owner.secret, "POST", "/v1/projects", { name: "Twice" }));
    expect(await projectRows(owner.orgId)).toHaveLength(2);
    expect(await storedKeys(owner.orgId)).toEqual([]);
  });

  test("a replayed PATCH does not apply the change again (one audit row, updatedAt unchanged)", async () => {
    const owner = await createApiTenant(stack.db);
    const project = createdProject(await send(owner.secret, "POST", "/v1/projects", { name: "A" }));
    const patch = { name: "B" };
    const first = await send(owner.secret, "PATCH", `/v1/projects/${project.id}`, patch, withKey("rename"));
    expect(first.status).toBe(200);
    const firstBody = first.body;
    const [afterFirst] = await projectRows(owner.orgId);

    const again = await send(owner.secret, "PATCH", `/v1/projects/${project.id}`, patch, withKey("rename"));
    expect(again.status).toBe(200);
    expect(again.headers.get("Idempotent-Replayed")).toBe("true");
    expect(JSON.parse(again.text)).toEqual(firstBody);
    expect(await projectRows(owner.orgId)).toEqual([afterFirst]);
    expect((await projectAudit(owner.orgId)).map((a) => a.action)).toEqual([
      "project.created",
      "project.updated",
    ]);
  });
});

describe("Idempotency-Key: reuse with another request", () => {
  test("same key + different body → 422 idempotency_key_reused; nothing created", async () => {
    const owner = await createApiTenant(stack.db);
    const first = createdProject(
      await send(owner.secret, "POST", "/v1/projects", { name: "First" }, withKey("k-body")),
    );
    const reused = await send(owner.secret, "POST", "/v1/projects", { name: "Second" }, withKey("k-body"));
    expect(reused.status).toBe(422);
    expect(reused.headers.get("Idempotent-Replayed")).toBeNull();
    expect(reused.error.code).toBe("idempotency_key_reused");
    expect((await projectRows(owner.orgId)).map((r) => [r.id, r.name])).toEqual([[first.id, "First"]]);
    expect(await projectAudit(owner.orgId)).toHaveLength(1);

    // The 422 did not overwrite the stored answer: the original request still replays.
    const replay = await send(owner.secret, "POST", "/v1/projects", { name: "First" }, withKey("k-body"));
    expect(replay.status).toBe(201);
    expect(replay.headers.get("Idempotent-Replayed")).toBe("true");
    expect(JSON.parse(replay.text)).toEqual(first);
  });

  test("same key + different path or method → 422; nothing changes", async () => {
    const owner = await createApiTenant(stack.db);
    const project = createdProject(
      await send(owner.secret, "POST", "/v1/projects", { name: "Stay" }, withKey("k-path")),
    );
    const patch = await send(
      owner.secret,
      "PATCH",
      `/v1/projects/${project.id}`,
      { name: "x" },
      withKey("k-path"),
    );
    expect(patch.status).toBe(422);
    expect(patch.error.code).toBe("idempotency_key_reused");

    // Two body-less POSTs that differ only in their path.
    const archived = await send(
      owner.secret,
      "POST",
      `/v1/projects/${project.id}/archive`,
      undefined,
      withKey("k-arch"),
    );
    expect(archived.status).toBe(200);
    const unarchive = await send(
      owner.secret,
      "POST",
      `/v1/projects/${project.id}/unarchive`,
      undefined,
      withKey("k-arch"),
    );
    expect(unarchive.status).toBe(422);
    expect(unarchive.error.code).toBe("idempotency_key_reused");

    const rows = await projectRows(owner.orgId);
    expect(rows).toMatchObject([{ id: project.id, name: "Stay" }]);
    expect(rows[0]!.archived_at).not.toBeNull();
    expect((await projectAudit(owner.orgId)).map((a) => a.action)).toEqual([
      "project.created",
      "project.archived",
    ]);
  });
});

describe("Idempotency-Key: scope", () => {
  test("the key is scoped to the org: org B's same key string creates its own project", async () => {
    const a = await createApiTenant(stack.db);
    const b = await createApiTenant(stack.db);
    const body = { name: "Shared name" };
    const inA = createdProject(await send(a.secret, "POST", "/v1/projects", body, withKey("shared-key")));
    const inBResponse = await send(b.secret, "POST", "/v1/projects", body, withKey("shared-key"));
    expect(inBResponse.headers.get("Idempotent-Replayed")).toBeNull();
    const inB = createdProject(inBResponse);
    expect(inB.id).not.toBe(inA.id);
    // A different body in org C is no reuse either: org A's record is invisible to it.
    const c = await createApiTenant(stack.db);
    createdProject(await send(c.secret, "POST", "/v1/projects", { name: "Other" }, withKey("shared-key")));

    expect((await projectRows(a.orgId)).map((r) => r.id)).toEqual([inA.id]);
    expect((await projectRows(b.orgId)).map((r) => r.id)).toEqual([inB.id]);
    expect(await projectRows(c.orgId)).toHaveLength(1);
  });

  test("two API keys of one org have separate scopes: the second key's request is its own, never a replay", async () => {
    const owner = await createApiTenant(stack.db);
    const developer = await addApiKey(stack.db, owner.orgId, "developer");
    const body = { name: "Key scoped" };
    const first = createdProject(await send(owner.secret, "POST", "/v1/projects", body, withKey("org-k")));
    const second = await send(developer.secret, "POST", "/v1/projects", body, withKey("org-k"));
    expect(second.status).toBe(201);
    expect(second.headers.get("Idempotent-Replayed")).toBeNull();
    expect(second.body.id).not.toBe(first.id);
    expect(await projectRows(owner.orgId)).toHaveLength(2);
  });
});

describe("Idempotency-Key: which answers are stored", () => {
  test("a 404 after validation is stored and replayed", async () => {
    const owner = await createApiTenant(stack.db);
    const path = "/v1/projects/proj_doesNotExist12345678";
    const first = await send(owner.secret, "PATCH", path, { name: "x" }, withKey("k-404"));
    expect(first.status).toBe(404);
    expect(first.headers.get("Idempotent-Replayed")).toBeNull();
    const firstBody = JSON.parse(first.text) as ErrorBody;
    expect(firstBody.error.code).toBe("not_found");

    const again = await send(owner.secret, "PATCH", path, { name: "x" }, withKey("k-404"));
    expect(again.status).toBe(404);
    expect(again.headers.get("Idempotent-Replayed")).toBe("true");
    // The first answer, byte for byte (its requestId names the request that produced it).
    expect(JSON.parse(again.text)).toEqual(firstBody);
    expect(await storedKeys(owner.orgId)).toEqual([
      { idempotency_key: "k-404", state: "completed", response_status: 404 },
    ]);
    expect(await projectAudit(owner.orgId)).toEqual([]);
  });

  test("a validation 400 is not stored: the same key then serves a valid request", async () => {
    const owner = await createApiTenant(stack.db);
    const invalid = await send(owner.secret, "POST", "/v1/projects", { name: "" }, withKey("k-400"));
    expect(invalid.status).toBe(400);
    expect(invalid.error.code).toBe("invalid_request");
    const malformed = await send(owner.secret, "POST", "/v1/projects", '{"name":', withKey("k-400"));
    expect(malformed.status).toBe(400);
    expect(malformed.error.code).toBe("invalid_json");
    expect(await storedKeys(owner.orgId)).toEqual([]);

    const valid = await send(owner.secret, "POST", "/v1/projects", { name: "Valid" }, withKey("k-400"));
    expect(valid.status).toBe(201);
    expect(valid.headers.get("Idempotent-Replayed")).toBeNull();
    expect(await projectRows(owner.orgId)).toMatchObject([{ name: "Valid" }]);
  });

  test("a 401 (revoked key of the same org) is not stored", async () => {
    const owner = await createApiTenant(stack.db);
    const doomed = await addApiKey(stack.db, owner.orgId, "owner");
    const revoke = await send(owner.secret, "POST", `/v1/api-keys/${doomed.keyId}/revoke`);
    expect(revoke.status).toBe(200);

    const denied = await send(doomed.secret, "POST", "/v1/projects", { name: "Denied" }, withKey("k-401"));
    expect(denied.status).toBe(401);
    expect(denied.error.code).toBe("unauthorized");
    const malformed = await stack.api("/v1/projects", {
      method: "POST",
      headers: {
        "Content-Type": "application/json",
        Authorization: "Bearer nope",
        "Idempotency-Key": "k-401",
      },
      body: JSON.stringify({ name: "Denied" }),
    });
    expect(malformed.status).toBe(401);
    expect(await storedKeys(owner.orgId)).toEqual([]);

    const allowed = await send(owner.secret, "POST", "/v1/projects", { name: "Allowed" }, withKey("k-401"));
    expect(allowed.status).toBe(201);
    expect(await projectRows(owner.orgId)).toMatchObject([{ name: "Allowed" }]);
  });

  test("a 403 for the key's role is not stored", async () => {
    const owner = await createApiTenant(stack.db);
    const readOnly = await addApiKey(stack.db, owner.orgId, "read_only");
    const denied = await send(readOnly.secret, "POST", "/v1/projects", { name: "Denied" }, withKey("k-403"));
    expect(denied.status).toBe(403);
    expect(await storedKeys(owner.orgId)).toEqual([]);
    const allowed = await send(owner.secret, "POST", "/v1/projects", { name: "Denied" }, withKey("k-403"));
    expect(allowed.status).toBe(201);
    expect(allowed.headers.get("Idempotent-Replayed")).toBeNull();
  });

  test("a 403 for the key's project restriction is not stored (it says nothing about the request)", async () => {
    const owner = await createApiTenant(stack.db);
    const own = await withTenant(stack.db, owner.orgId, (tx) =>
      createProject(tx, owner.orgId, { name: "Own" }),
    );
    const restricted: ApiTenant = await addApiKey(stack.db, owner.orgId, "developer", own.id);
    const body = { name: "Org-wide only" };
    const denied = await send(restricted.secret, "POST", "/v1/projects", body, withKey("k-403-project"));
    expect(denied.status).toBe(403);
    expect(denied.error.code).toBe("forbidden");
    expect(await storedKeys(owner.orgId)).toEqual([]);

    // The org-wide key sending the very same request with the same key must create it, not replay a 403.
    const allowed = await send(owner.secret, "POST", "/v1/projects", body, withKey("k-403-project"));
    expect(allowed.status).toBe(201);
    expect(allowed.headers.get("Idempotent-Replayed")).toBeNull();
    expect((await projectRows(owner.orgId)).map((r) => r.name).sort()).toEqual(["Org-wide only", "Own"]);
  });

  test("an Idempotency-Key of 256 characters → 400 invalid_idempotency_key; nothing created or changed", async () => {
    const owner = await createApiTenant(stack.db);
    const key = "k".repeat(256);
    const created = await send(owner.secret, "POST", "/v1/projects", { name: "Too long" }, withKey(key));
    expect(created.status).toBe(400);
    expect(created.error.code).toBe("invalid_idempotency_key");
    expect(await projectRows(owner.orgId)).toEqual([]);

    const project = createdProject(await send(owner.secret, "POST", "/v1/projects", { name: "Kept" }));
    const patched = await send(
      owner.secret,
      "PATCH",
      `/v1/projects/${project.id}`,
      { name: "x" },
      withKey(key),
    );
    expect(patched.status).toBe(400);
    expect(patched.error.code).toBe("invalid_idempotency_key");
    expect(await projectRows(owner.orgId)).toMatchObject([{ id: project.id, name: "Kept" }]);
    expect(await storedKeys(owner.orgId)).toEqual([]);
  });

  test("an Idempotency-Key of exactly 255 characters is accepted and replays", async () => {
    const owner = await createApiTenant(stack.db);
    const key = "k".repeat(255);
    const first = createdProject(
      await send(owner.secret, "POST", "/v1/projects", { name: "Max" }, withKey(key)),
    );
    const again = await send(owner.secret, "POST", "/v1/projects", { name: "Max" }, withKey(key));
    expect(again.headers.get("Idempotent-Replayed")).toBe("true");
    expect(JSON.parse(again.text)).toEqual(first);
  });
});

describe("Idempotency-Key: 24 h lifetime (injected clock)", () => {
  test("a record binds the key for 24 h, then no longer does", async () => {
    const owner = await createApiTenant(stack.db);
    const t = Date.parse("2026-11-20T10:00:00.000Z");
    const at = (ms: number) => ({ "X-Layers-Test-Now": new Date(t + ms).toISOString() });
    const first = createdProject(
      await send(owner.secret, "POST", "/v1/projects", { name: "Day one" }, withKey("k-ttl", at(0))),
    );

    const day = 24 * 3_600_000;
    const replay = await send(
      owner.secret,
      "POST",
      "/v1/projects",
      { name: "Day one" },
      withKey("k-ttl", at(day - 1000)),
    );
    expect(replay.status).toBe(201);
    expect(replay.headers.get("Idempotent-Replayed")).toBe("true");
    expect(replay.body.id).toBe(first.id);
    const stillBound = await send(
      owner.secret,
      "POST",
      "/v1/projects",
      { name: "Day two" },
      withKey("k-ttl", at(day - 1000)),
    );
    expect(stillBound.status).toBe(422);
    expect(stillBound.error.code).toBe("idempotency_key_reused");

    const expired = await send(
      owner.secret,
      "POST",
      "/v1/projects",
      { name: "Day two" },
      withKey("k-ttl", at(day + 1000)),
    );
    expect(expired.status).toBe(201);
    expect(expired.headers.get("Idempotent-Replayed")).toBeNull();
    expect(expired.body.id).not.toBe(first.id);
    expect((await projectRows(owner.orgId)).map((r) => r.name).sort()).toEqual(["Day one", "Day two"]);

    // The key now binds the new request.
    const rebound = await send(
      owner.secret,
      "POST",
      "/v1/projects",
      { name: "Day one" },
      withKey("k-ttl", at(day + 2000)),
    );
    expect(rebound.status).toBe(422);
  });
});

describe("Idempotency-Key: concurrency (real Postgres)", () => {
  test.runIf(realPostgres)("50 identical POSTs at once create one project and one audit row", async () => {
    const owner = await createApiTenant(stack.db);
    const body = { name: "Burst" };
    const responses = await Promise.all(
      Array.from({ length: 50 }, () => send(owner.secret, "POST", "/v1/projects", body, withKey("burst"))),
    );
    const statuses = responses.map((r) => r.status);
    expect(
      statuses.filter((s) => s !== 201 && s !== 409),
      `statuses: ${statuses.join(",")}`,
    ).toEqual([]);
    const ids = new Set<string>();
    for (const r of responses) {
      if (r.status === 201) ids.add(r.body.id);
      else expect(r.error.code).toBe("idempotency_key_in_use");
    }
    expect(ids.size).toBe(1);

    const rows = await projectRows(owner.orgId);
    expect(rows.map((p) => p.id)).toEqual([...ids]);
    expect((await projectAudit(owner.orgId)).map((a) => a.action)).toEqual(["project.created"]);

    // Once settled, a retry replays the one project.
    const retry = await send(owner.secret, "POST", "/v1/projects", body, withKey("burst"));
    expect(retry.status).toBe(201);
    expect(retry.headers.get("Idempotent-Replayed")).toBe("true");
    expect(retry.body.id).toBe(rows[0]!.id);
  });

  test.runIf(realPostgres)("50 identical PATCHes at once write one project.updated audit row", async () => {
    const owner = await createApiTenant(stack.db);
    const project = createdProject(await send(owner.secret, "POST", "/v1/projects", { name: "Before" }));
    const responses = await Promise.all(
      Array.from({ length: 50 }, () =>
        send(owner.secret, "PATCH", `/v1/projects/${project.id}`, { name: "x" }, withKey("patch-burst")),
      ),
    );
    const statuses = responses.map((r) => r.status);
    expect(
      statuses.filter((s) => s !== 200 && s !== 409),
      `statuses: ${statuses.join(",")}`,
    ).toEqual([]);
    for (const r of responses.filter((r) => r.status === 409)) {
      expect(r.error.code).toBe("idempotency_key_in_use");
    }
    const updated = responses.filter((r) => r.status === 200).map((r) => r.body);
    expect(updated.length).toBeGreaterThan(0);
    expect([...new Set(updated.map((u) => JSON.stringify(u)))]).toHaveLength(1);

    const audit = await projectAudit(owner.orgId);
    expect(audit.map((a) => a.action)).toEqual(["project.created", "project.updated"]);
    expect(await projectRows(owner.orgId)).toMatchObject([{ id: project.id, name: "x" }]);
  });
});
