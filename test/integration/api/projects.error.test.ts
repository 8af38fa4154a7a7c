import { afterAll, beforeAll, describe, expect, test } from "vitest";
import {
  type Answer,
  type ApiError,
  api,
  type CallOptions,
  errorDetails,
  type Method,
} from "../../support/api";
import { createApiTenant } from "../../support/apiTenant";
import type { Project, ProjectList } from "../../support/apiTypes";
import { type Stack, startStack } from "../../support/stack";

// /v1/projects, error cases: validation (400 listing the fields), malformed JSON, unknown ids, pagination
// edges. Each request that fails must leave the org's projects and audit log as they were.

let stack: Stack;
beforeAll(async () => {
  stack = await startStack({ consumer: "recorder" });
});
afterAll(() => stack?.dispose());

/** A call through the typed client; a string body is sent as is (malformed JSON). */
function send<Res = unknown>(
  secret: string,
  method: Method,
  path: string,
  body?: unknown,
  options: CallOptions = {},
): Promise<Answer<Res>> {
  return api(stack, secret).send<Res>(method, path, typeof body === "string" ? undefined : body, {
    ...(typeof body === "string" ? { rawBody: body } : {}),
    ...options,
  });
}

async function createProjectViaApi(secret: string, name: string): Promise<Project> {
  const response = await send<Project>(secret, "POST", "/v1/projects", { name });
  expect(response.status).toBe(201);
  return response.body;
}

/** The error of an answer that must have `status`, with the request id it was given. */
function errorOf(answer: Answer<unknown>, status: number): ApiError & { fields: string[] } {
  expect(answer.status, answer.text).toBe(status);
  expect(answer.error.requestId).toBe(answer.headers.get("X-Request-Id"));
  return { ...answer.error, fields: errorDetails(answer.error).map((d) => d.field) };
}

/** The org's projects and project audit rows straight from the database, for "nothing changed" checks. */
async function snapshot(orgId: string) {
  const projects = await stack.db
    .selectFrom("projects")
    .select(["id", "name", "event_retention_days", "archived_at", "updated_at"])
    .where("org_id", "=", orgId)
    .orderBy("id")
    .execute();
  const audit = await stack.db
    .selectFrom("audit_log")
    .select(["id", "action", "resource_id"])
    .where("org_id", "=", orgId)
    .where("resource_type", "=", "project")
    .orderBy("id")
    .execute();
  return { projects, audit };
}

describe("projects: error", () => {
  test.each([
    ["no name", { eventRetentionDays: 90 }, ["name"]],
    ["a blank name", { name: "   " }, ["name"]],
    ["a name of 201 characters", { name: "n".repeat(201) }, ["name"]],
    ["a name that is not a string", { name: 42 }, ["name"]],
    ["eventRetentionDays 29", { name: "A", eventRetentionDays: 29 }, ["eventRetentionDays"]],
    ["eventRetentionDays 401", { name: "A", eventRetentionDays: 401 }, ["eventRetentionDays"]],
    ["fractional eventRetentionDays", { name: "A", eventRetentionDays: 90.5 }, ["eventRetentionDays"]],
    ["eventRetentionDays as a string", { name: "A", eventRetentionDays: "90" }, ["eventRetentionDays"]],
    ["no name and eventRetentionDays 401", { eventRetentionDays: 401 }, ["name", "eventRetentionDays"]],
  ])("POST with %s → 400 invalid_request listing the fields; nothing stored", async (_, body, fields) => {
    const owner = await createApiTenant(stack.db);
    const error = errorOf(await send(owner.secret, "POST", "/v1/projects", body), 400);
    expect(error).toMatchObject({ type: "invalid_request_error", code: "invalid_request" });
    expect(error.docs).toContain("invalid_request");
    const listed = error.fields;
    for (const field of fields) expect(listed).toContain(field);
    expect(await snapshot(owner.orgId)).toEqual({ projects: [], audit: [] });
  });

  test("a name of exactly 200 characters and retention 30 and 400 are accepted (the bounds are inclusive)", async () => {
    const owner = await createApiTenant(stack.db);
    for (const body of [
      { name: "n".repeat(200), eventRetentionDays: 30 },
      { name: "edge", eventRetentionDays: 400 },
    ]) {
      const response = await send(owner.secret, "POST", "/v1/projects", body);
      expect(response.status).toBe(201);
      expect(response.body).toMatchObject(body);
    }
  });

  test.each([
    ["eventRetentionDays 29", { eventRetentionDays: 29 }, "eventRetentionDays"],
    ["eventRetentionDays 401", { eventRetentionDays: 401 }, "eventRetentionDays"],
    ["a name too long", { name: "n".repeat(201) }, "name"],
    ["a blank name", { name: "" }, "name"],
  ])("PATCH with %s → 400 invalid_request; nothing changes", async (_, body, field) => {
    const owner = await createApiTenant(stack.db);
    const project = await createProjectViaApi(owner.secret, "Keep");
    const before = await snapshot(owner.orgId);
    const error = errorOf(await send(owner.secret, "PATCH", `/v1/projects/${project.id}`, body), 400);
    expect(error.code).toBe("invalid_request");
    expect(error.fields).toContain(field);
    expect(await snapshot(owner.orgId)).toEqual(before);
  });

  test("PATCH with an unknown field → 400 naming it; nothing changes", async () => {
    const owner = await createApiTenant(stack.db);
    const project = await createProjectViaApi(owner.secret, "Keep");
    const before = await snapshot(owner.orgId);
    for (const body of [{ archived: true }, { name: "Renamed", orgId: "org_someoneElse" }]) {
      const error = errorOf(await send(owner.secret, "PATCH", `/v1/projects/${project.id}`, body), 400);
      expect(error.code).toBe("invalid_request");
      const unknown = Object.keys(body).find((k) => k !== "name")!;
      const named = errorDetails(error).some(
        (d) => d.field === unknown || d.message.includes(`"${unknown}"`),
      );
      expect(named, JSON.stringify(error.details)).toBe(true);
    }
    expect(await snapshot(owner.orgId)).toEqual(before);
  });

  test.each([
    "limit=0",
    "limit=101",
    "limit=ten",
    "limit=-5",
  ])("GET /v1/projects?%s → 400 listing limit", async (q) => {
    const owner = await createApiTenant(stack.db);
    const error = errorOf(await send(owner.secret, "GET", `/v1/projects?${q}`), 400);
    expect(error.code).toBe("invalid_request");
    expect(error.fields).toContain("limit");
  });

  test.each([
    ["POST /v1/projects", "POST", "/v1/projects", '{"name": "Half",'],
    ["POST /v1/projects (not an object)", "POST", "/v1/projects", "not json at all"],
    ["PATCH /v1/projects/{id}", "PATCH", "/v1/projects/:id", '{"name": '],
  ])("malformed JSON on %s → 400 invalid_json, not a 500; nothing changes", async (_, method, path, raw) => {
    const owner = await createApiTenant(stack.db);
    const project = await createProjectViaApi(owner.secret, "Keep");
    const before = await snapshot(owner.orgId);
    const response = await send(owner.secret, method as Method, path.replace(":id", project.id), raw);
    const error = errorOf(response, 400);
    expect(error.code).toBe("invalid_json");
    expect(await snapshot(owner.orgId)).toEqual(before);
  });

  test("a body that is not declared as JSON → 415 unsupported_media_type, not a 500", async () => {
    const owner = await createApiTenant(stack.db);
    for (const contentType of [undefined, "text/plain"]) {
      const response = await send(
        owner.secret,
        "POST",
        "/v1/projects",
        { name: "Untyped" },
        { contentType: contentType ?? null },
      );
      const error = errorOf(response, 415);
      expect(error.code).toBe("unsupported_media_type");
    }
    expect(await snapshot(owner.orgId)).toEqual({ projects: [], audit: [] });
  });

  test("a required body left out entirely → 400 naming the fields (or invalid_json if declared JSON)", async () => {
    const owner = await createApiTenant(stack.db);
    const project = await createProjectViaApi(owner.secret, "Keep");
    const before = await snapshot(owner.orgId);
    for (const [method, path] of [
      ["POST", "/v1/projects"],
      ["PATCH", `/v1/projects/${project.id}`],
    ] as const) {
      if (method === "POST") {
        // (A PATCH without a body is an empty update: every field is optional.)
        const bare = errorOf(await send(owner.secret, method, path, undefined, { contentType: null }), 400);
        expect(bare.code).toBe("invalid_request");
        expect(bare.fields).toContain("name");
      }
      const declared = await send(owner.secret, method, path);
      expect(errorOf(declared, 400).code).toBe("invalid_json");
    }
    expect(await snapshot(owner.orgId)).toEqual(before);
  });

  test("unknown project ids → 404 not_found on GET, PATCH, archive and unarchive", async () => {
    const owner = await createApiTenant(stack.db);
    const project = await createProjectViaApi(owner.secret, "Existing");
    const before = await snapshot(owner.orgId);
    for (const id of ["proj_doesNotExist1234567", "mem_notAProject", "x".repeat(64)]) {
      const calls: [Method, string, unknown][] = [
        ["GET", `/v1/projects/${id}`, undefined],
        ["PATCH", `/v1/projects/${id}`, { name: "x" }],
        ["POST", `/v1/projects/${id}/archive`, undefined],
        ["POST", `/v1/projects/${id}/unarchive`, undefined],
      ];
      for (const [method, path, body] of calls) {
        const error = errorOf(await send(owner.secret, method, path, body), 404);
        expect(error, `${method} ${path}`).toMatchObject({ type: "not_found_error", code: "not_found" });
      }
    }
    expect(await snapshot(owner.orgId)).toEqual(before);
    expect(before.projects.map((p) => p.id)).toEqual([project.id]);
  });

  test("a project id longer than 64 characters → 400 listing projectId", async () => {
    const owner = await createApiTenant(stack.db);
    const error = errorOf(await send(owner.secret, "GET", `/v1/projects/${"x".repeat(65)}`), 400);
    expect(error.code).toBe("invalid_request");
    expect(error.fields).toContain("projectId");
  });

  test("pagination: 25 projects, limit 10 → 3 pages, newest first, no duplicates or gaps", async () => {
    const owner = await createApiTenant(stack.db);
    const created: string[] = [];
    for (let i = 0; i < 25; i++) created.push((await createProjectViaApi(owner.secret, `P${i}`)).id);
    const newestFirst = [...created].reverse();

    const pages: ProjectList[] = [];
    let cursor: string | null = null;
    do {
      const query: string = cursor ? `limit=10&starting_after=${cursor}` : "limit=10";
      const response = await send<ProjectList>(owner.secret, "GET", `/v1/projects?${query}`);
      expect(response.status).toBe(200);
      const body = response.body;
      pages.push(body);
      cursor = body.nextCursor;
    } while (cursor !== null && pages.length < 5);

    expect(pages.map((p) => p.data.length)).toEqual([10, 10, 5]);
    expect(pages.map((p) => p.hasMore)).toEqual([true, true, false]);
    expect(pages[0]!.nextCursor).toBe(pages[0]!.data[9]!.id);
    expect(pages[2]!.nextCursor).toBeNull();
    const seen = pages.flatMap((p) => p.data.map((d) => d.id));
    expect(seen).toEqual(newestFirst);
    expect(new Set(seen).size).toBe(25);

    // Exactly one page's worth: no phantom next page.
    const exact = (await send<ProjectList>(owner.secret, "GET", "/v1/projects?limit=25")).body;
    expect(exact).toMatchObject({ hasMore: false, nextCursor: null });
    expect(exact.data).toHaveLength(25);
    // The default page size is 20.
    const first = (await send<ProjectList>(owner.secret, "GET", "/v1/projects")).body;
    expect(first.data.map((d) => d.id)).toEqual(newestFirst.slice(0, 20));
    expect(first.hasMore).toBe(true);
  });
});
