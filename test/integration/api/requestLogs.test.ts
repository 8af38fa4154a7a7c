import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { type ApiTenant, addApiKey, bearer, createApiTenant } from "../../support/apiTenant";
import { type Stack, startStack, waitFor } from "../../support/stack";

// Request metadata logs: one row per authenticated request (route pattern, status, latency, key), never a
// body; GET /v1/request-logs shows a partner theirs. Rows are written just after the response (deferred),
// so tests poll for them.

let stack: Stack;
beforeAll(async () => {
  stack = await startStack({ consumer: "recorder" });
});
afterAll(() => stack?.dispose());

interface RequestLogJson {
  requestId: string;
  object: "request_log";
  apiKeyId: string;
  method: string;
  route: string;
  status: number;
  latencyMs: number;
  occurredAt: string;
}
interface RequestLogList {
  object: "list";
  data: RequestLogJson[];
  hasMore: boolean;
  nextCursor: string | null;
}
type ErrorJson = { error: { code: string; details?: { field: string }[] } };

async function call(
  t: ApiTenant,
  method: string,
  path: string,
  init: { body?: string; headers?: Record<string, string> } = {},
): Promise<{ status: number; requestId: string; text: string }> {
  const response = await stack.api(path, {
    method,
    headers: bearer(t.secret, init.headers),
    ...(init.body === undefined ? {} : { body: init.body }),
  });
  return {
    status: response.status,
    requestId: response.headers.get("X-Request-Id") ?? "",
    text: await response.text(),
  };
}

/** Waits until every one of these request ids has its row; returns the rows by request id. */
async function logged(requestIds: string[]) {
  return waitFor(async () => {
    const rows = await stack.db
      .selectFrom("request_logs")
      .selectAll()
      .where("request_id", "in", requestIds)
      .execute();
    return rows.length === requestIds.length ? new Map(rows.map((r) => [r.request_id, r])) : undefined;
  });
}

async function listLogs(t: ApiTenant, params: Record<string, string> = {}): Promise<RequestLogList> {
  const response = await stack.api(`/v1/request-logs?${new URLSearchParams(params)}`, {
    headers: bearer(t.secret),
  });
  const body = await response.json();
  expect(response.status, JSON.stringify(body)).toBe(200);
  return body as RequestLogList;
}

const at = (iso: string) => ({ "X-Layers-Test-Now": iso });
const GENERATED_ID = /^req_[1-9A-HJ-NP-Za-km-z]{20}$/;

describe("request logs: what is recorded", () => {
  test("route pattern, method, status, latency and key for 2xx/4xx; never a body", async () => {
    const owner = await createApiTenant(stack.db);
    const marker = `body-marker-${randomUUID()}`;
    const projectName = `Secret Garden ${randomUUID()}`;
    const pathMarker = `path-marker-${randomUUID()}`;

    const create = await call(owner, "POST", "/v1/projects", { body: JSON.stringify({ name: projectName }) });
    expect(create.status).toBe(201);
    const projectId = (JSON.parse(create.text) as { id: string }).id;
    const get = await call(owner, "GET", `/v1/projects/${projectId}`);
    expect(get.status).toBe(200);
    const missing = await call(owner, "GET", "/v1/projects/proj_doesnotexist0000000");
    expect(missing.status).toBe(404);
    const invalid = await call(owner, "POST", "/v1/projects", {
      body: JSON.stringify({ name: "", eventRetentionDays: marker }),
    });
    expect(invalid.status).toBe(400);
    const rename = await call(owner, "PATCH", `/v1/projects/${projectId}`, {
      body: JSON.stringify({ name: `${projectName} v2` }),
    });
    expect(rename.status).toBe(200);
    const noRoute = await call(owner, "GET", `/v1/nothing-here/${pathMarker}`);
    expect(noRoute.status).toBe(404);

    const expected: [typeof create, string, string, number][] = [
      [create, "POST", "/v1/projects", 201],
      [get, "GET", "/v1/projects/:projectId", 200],
      [missing, "GET", "/v1/projects/:projectId", 404],
      [invalid, "POST", "/v1/projects", 400],
      [rename, "PATCH", "/v1/projects/:projectId", 200],
    ];
    const rows = await logged([...expected.map(([r]) => r.requestId), noRoute.requestId]);
    for (const [response, method, route, status] of expected) {
      const row = rows.get(response.requestId)!;
      expect(row).toMatchObject({ org_id: owner.orgId, api_key_id: owner.keyId, method, route, status });
      expect(row.latency_ms).toBeGreaterThanOrEqual(0);
      expect(Number.isInteger(row.latency_ms)).toBe(true);
    }
    // A path that matched no route is not recorded as typed: it may carry anything.
    const unmatched = rows.get(noRoute.requestId)!;
    expect(unmatched).toMatchObject({ method: "GET", status: 404 });
    expect(unmatched.route).not.toContain(pathMarker);
    // The pattern, never the concrete id.
    expect([...rows.values()].some((r) => r.route.includes(projectId))).toBe(false);

    // The partner sees the same rows through the API.
    const list = await listLogs(owner, { limit: "100" });
    for (const [response, method, route, status] of expected) {
      const item = list.data.find((i) => i.requestId === response.requestId);
      expect(item).toEqual({
        requestId: response.requestId,
        object: "request_log",
        apiKeyId: owner.keyId,
        method,
        route,
        status,
        latencyMs: rows.get(response.requestId)!.latency_ms,
        occurredAt: rows.get(response.requestId)!.occurred_at.toISOString(),
      });
    }

    // No request or response body content anywhere: not in the table, not in the Worker's log lines.
    const everything = await stack.db
      .selectFrom("request_logs")
      .selectAll()
      .where("org_id", "=", owner.orgId)
      .execute();
    const stored = JSON.stringify(everything);
    const logs = stack.logs.join("\n");
    for (const text of [stored, logs, JSON.stringify(list)]) {
      expect(text).not.toContain(marker);
      expect(text).not.toContain(projectName);
      expect(text).not.toContain("Secret Garden");
      expect(text).not.toContain(pathMarker);
      expect(text).not.toContain(owner.secret);
    }
  });

  test("X-Request-Id: a valid client id is echoed and logged; an invalid one is replaced", async () => {
    const owner = await createApiTenant(stack.db);
    const clientId = `client.${randomUUID()}:retry-1`;
    const valid = await call(owner, "GET", "/v1/projects", { headers: { "X-Request-Id": clientId } });
    expect(valid.status).toBe(200);
    expect(valid.requestId).toBe(clientId);

    const invalidIds = ["short", "has spaces in it", "x".repeat(129), "semi;colon-1234", 'quote"12345678'];
    const replaced: string[] = [];
    for (const sent of invalidIds) {
      const response = await call(owner, "GET", "/v1/projects", { headers: { "X-Request-Id": sent } });
      expect(response.status).toBe(200);
      expect(response.requestId).toMatch(GENERATED_ID);
      replaced.push(response.requestId);
    }
    const errorWithId = await call(owner, "GET", "/v1/projects/proj_nope00000000000000", {
      headers: { "X-Request-Id": `${clientId}-404` },
    });
    expect(errorWithId.requestId).toBe(`${clientId}-404`);
    expect((JSON.parse(errorWithId.text) as { error: { requestId: string } }).error.requestId).toBe(
      `${clientId}-404`,
    );

    const rows = await logged([clientId, ...replaced, `${clientId}-404`]);
    expect(rows.get(clientId)).toMatchObject({ org_id: owner.orgId, route: "/v1/projects", status: 200 });
    expect(rows.get(`${clientId}-404`)).toMatchObject({ status: 404 });
    const sentRows = await stack.db
      .selectFrom("request_logs")
      .select("request_id")
      .where("request_id", "in", invalidIds)
      .execute();
    expect(sentRows).toEqual([]);

    // Boundaries: 8 and 128 characters of the allowed alphabet are kept.
    for (const sent of [`A.b:c-${randomUUID().slice(0, 2)}`, `${"a".repeat(92)}${randomUUID()}`]) {
      expect((await call(owner, "GET", "/v1/org", { headers: { "X-Request-Id": sent } })).requestId).toBe(
        sent,
      );
    }
  });
});

describe("GET /v1/request-logs", () => {
  test("filters (status, api_key_id, from inclusive / to exclusive) and cursor pagination", async () => {
    const owner = await createApiTenant(stack.db);
    const developer = await addApiKey(stack.db, owner.orgId, "developer");
    const t = (second: number) => `2025-05-01T08:00:0${second}.000Z`;
    const sent: string[] = [];
    for (let i = 0; i < 5; i++) {
      const r = await call(owner, "GET", "/v1/projects", { headers: at(t(i)) });
      expect(r.status).toBe(200);
      sent.push(r.requestId);
    }
    const missing = await call(owner, "GET", "/v1/projects/proj_missing0000000000", { headers: at(t(5)) });
    expect(missing.status).toBe(404);
    const byDeveloper = await call(developer, "GET", "/v1/projects", { headers: at(t(6)) });
    expect(byDeveloper.status).toBe(200);
    sent.push(missing.requestId, byDeveloper.requestId);
    await logged(sent);
    const window = { from: "2025-05-01T08:00:00Z", to: "2025-05-01T09:00:00Z" };

    const all = await listLogs(owner, window);
    expect(all.data.map((i) => i.requestId)).toEqual([...sent].reverse());
    expect(all.hasMore).toBe(false);

    expect((await listLogs(owner, { ...window, status: "404" })).data).toMatchObject([
      { requestId: missing.requestId, status: 404, route: "/v1/projects/:projectId", method: "GET" },
    ]);
    expect(
      (await listLogs(owner, { ...window, api_key_id: developer.keyId })).data.map((i) => i.requestId),
    ).toEqual([byDeveloper.requestId]);
    expect((await listLogs(owner, { from: t(2), to: t(5) })).data.map((i) => i.requestId)).toEqual([
      sent[4],
      sent[3],
      sent[2],
    ]);

    const pages: RequestLogList[] = [];
    let cursor: string | null = null;
    do {
      const params: Record<string, string> = { ...window, limit: "3" };
      if (cursor) params.starting_after = cursor;
      const current = await listLogs(owner, params);
      pages.push(current);
      cursor = current.nextCursor;
      expect(pages.length).toBeLessThanOrEqual(3);
    } while (cursor);
    expect(pages.map((p) => p.data.length)).toEqual([3, 3, 1]);
    expect(pages.map((p) => p.hasMore)).toEqual([true, true, false]);
    expect(pages.flatMap((p) => p.data.map((i) => i.requestId))).toEqual([...sent].reverse());

    for (const query of [
      "status=abc",
      "status=42",
      "from=not-a-date",
      "limit=500",
      `from=${t(5)}&to=${t(1)}`,
    ]) {
      const response = await stack.api(`/v1/request-logs?${query}`, { headers: bearer(owner.secret) });
      expect(response.status, query).toBe(400);
      expect(((await response.json()) as ErrorJson).error.code).toBe("invalid_request");
    }
  });

  test("another org's requests never appear; non-admin and project-restricted keys → 403", async () => {
    const mine = await createApiTenant(stack.db);
    const theirs = await createApiTenant(stack.db);
    const theirRequest = await call(theirs, "GET", "/v1/projects");
    const myRequest = await call(mine, "GET", "/v1/projects");
    await logged([theirRequest.requestId, myRequest.requestId]);

    const myList = await listLogs(mine, { limit: "100" });
    expect(myList.data.map((i) => i.requestId)).toContain(myRequest.requestId);
    expect(myList.data.every((i) => i.apiKeyId === mine.keyId)).toBe(true);
    expect(JSON.stringify(myList)).not.toContain(theirRequest.requestId);
    expect((await listLogs(mine, { api_key_id: theirs.keyId })).data).toEqual([]);
    expect((await listLogs(mine, { starting_after: theirRequest.requestId })).data).toEqual([]);
    expect((await listLogs(theirs, { limit: "100" })).data.map((i) => i.requestId)).toContain(
      theirRequest.requestId,
    );

    const project = JSON.parse((await call(mine, "POST", "/v1/projects", { body: '{"name":"p"}' })).text) as {
      id: string;
    };
    for (const key of [
      await addApiKey(stack.db, mine.orgId, "read_only"),
      await addApiKey(stack.db, mine.orgId, "developer"),
      await addApiKey(stack.db, mine.orgId, "admin", project.id),
    ]) {
      const refused = await call(key, "GET", "/v1/request-logs");
      expect(refused.status).toBe(403);
      expect((JSON.parse(refused.text) as ErrorJson).error.code).toBe("forbidden");
      // The refusal itself is recorded, like any authenticated request.
      const row = (await logged([refused.requestId])).get(refused.requestId);
      expect(row).toMatchObject({ api_key_id: key.keyId, route: "/v1/request-logs", status: 403 });
    }
    expect((await stack.api("/v1/request-logs")).status).toBe(401);
    const admin = await addApiKey(stack.db, mine.orgId, "admin");
    expect((await listLogs(admin)).data.length).toBeGreaterThan(0);
  });
});
