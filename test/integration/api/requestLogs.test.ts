import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import {
  type RequestLogEntry,
  writeRequestLog,
  writeRequestLogs,
} from "../../../functions/requestLogs/requestLogs";
import { roleUrl } from "../../../scripts/local/migrate";
import { createNodeDb } from "../../../scripts/local/node-db";
import { type ApiError, api, type Method } from "../../support/api";
import { type ApiTenant, addApiKey, bearer, createApiTenant } from "../../support/apiTenant";
import type { RequestLogList } from "../../support/apiTypes";
import { testDatabaseUrl } from "../../support/database";
import { describeRouteSecurity } from "../../support/routeSecurity";
import { type Stack, startStack, waitFor } from "../../support/stack";

// Request metadata logs: one row per authenticated request (route pattern, status, latency, key), never a
// body; GET /v1/request-logs shows a partner theirs. Rows are written just after the response (deferred),
// so tests poll for them.

let stack: Stack;
beforeAll(async () => {
  stack = await startStack({ consumer: "recorder" });
});
afterAll(() => stack?.dispose());

/** A call through the typed client: every answer is checked against its route's schema. */
async function call(
  t: ApiTenant,
  method: Method,
  path: string,
  init: { body?: string; headers?: Record<string, string> } = {},
): Promise<{ status: number; requestId: string; text: string; error: () => ApiError }> {
  const answer = await api(stack, t.secret).send(method, path, undefined, {
    ...(init.body === undefined ? {} : { rawBody: init.body }),
    ...(init.headers ? { headers: init.headers } : {}),
  });
  return {
    status: answer.status,
    requestId: answer.headers.get("X-Request-Id") ?? "",
    text: answer.text,
    error: () => answer.error,
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
  const response = await api(stack, t.secret).get<RequestLogList>(
    `/v1/request-logs?${new URLSearchParams(params)}`,
  );
  expect(response.status, response.text).toBe(200);
  return response.body;
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
        clientRequestId: null,
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

  test("X-Request-Id is always ours; a valid client id is kept beside it, echoed in X-Client-Request-Id", async () => {
    const owner = await createApiTenant(stack.db);
    const clientId = `client.${randomUUID()}:retry-1`;
    const valid = await stack.api("/v1/projects", {
      headers: bearer(owner.secret, { "X-Request-Id": clientId }),
    });
    expect(valid.status).toBe(200);
    const ours = valid.headers.get("X-Request-Id")!;
    expect(ours).toMatch(GENERATED_ID);
    expect(valid.headers.get("X-Client-Request-Id")).toBe(clientId);

    // An error body names our id; the caller's comes back in its own header.
    const missing = await stack.api("/v1/projects/proj_nope00000000000000", {
      headers: bearer(owner.secret, { "X-Request-Id": `${clientId}-404` }),
    });
    expect(missing.status).toBe(404);
    const missingId = missing.headers.get("X-Request-Id")!;
    expect(missingId).toMatch(GENERATED_ID);
    expect(((await missing.json()) as { error: { requestId: string } }).error.requestId).toBe(missingId);
    expect(missing.headers.get("X-Client-Request-Id")).toBe(`${clientId}-404`);

    // Invalid client ids are dropped: our id only, no echo, nothing stored beside it.
    const invalidIds = ["short", "has spaces in it", "x".repeat(129), "semi;colon-1234", 'quote"12345678'];
    const dropped: string[] = [];
    for (const sent of invalidIds) {
      const response = await call(owner, "GET", "/v1/projects", { headers: { "X-Request-Id": sent } });
      expect(response.status).toBe(200);
      expect(response.requestId).toMatch(GENERATED_ID);
      dropped.push(response.requestId);
    }

    const rows = await logged([ours, missingId, ...dropped]);
    expect(rows.get(ours)).toMatchObject({ client_request_id: clientId, route: "/v1/projects", status: 200 });
    expect(rows.get(missingId)).toMatchObject({ client_request_id: `${clientId}-404`, status: 404 });
    for (const id of dropped) expect(rows.get(id)?.client_request_id).toBeNull();
    const list = await listLogs(owner, { limit: "100" });
    expect(list.data.find((i) => i.requestId === ours)?.clientRequestId).toBe(clientId);
    expect(list.data.find((i) => i.requestId === dropped[0])?.clientRequestId).toBeNull();

    // Boundaries: 8 and 128 characters of the allowed alphabet are kept.
    for (const sent of [`A.b:c-${randomUUID().slice(0, 2)}`, `${"a".repeat(92)}${randomUUID()}`]) {
      const response = await stack.api("/v1/org", {
        headers: bearer(owner.secret, { "X-Request-Id": sent }),
      });
      expect(response.headers.get("X-Client-Request-Id")).toBe(sent);
      expect(response.headers.get("X-Request-Id")).toMatch(GENERATED_ID);
    }
  });

  test("a client id sent again, or by another org, neither overwrites nor blocks a log row", async () => {
    const mine = await createApiTenant(stack.db);
    const theirs = await createApiTenant(stack.db);
    const reused = `reused-${randomUUID()}`;
    const sent = [
      await call(mine, "GET", "/v1/projects", { headers: { "X-Request-Id": reused } }),
      await call(mine, "GET", "/v1/projects/proj_gone0000000000000", { headers: { "X-Request-Id": reused } }),
      await call(theirs, "GET", "/v1/org", { headers: { "X-Request-Id": reused } }),
    ];
    expect(new Set(sent.map((r) => r.requestId)).size).toBe(3);
    const rows = await logged(sent.map((r) => r.requestId));
    expect(sent.map((r) => rows.get(r.requestId))).toMatchObject([
      { org_id: mine.orgId, client_request_id: reused, status: 200, route: "/v1/projects" },
      { org_id: mine.orgId, client_request_id: reused, status: 404, route: "/v1/projects/:projectId" },
      { org_id: theirs.orgId, client_request_id: reused, status: 200, route: "/v1/org" },
    ]);
    // Nothing is keyed by the client's id: no row has it as its request id.
    expect(
      await stack.db
        .selectFrom("request_logs")
        .select("request_id")
        .where("request_id", "=", reused)
        .execute(),
    ).toEqual([]);
  });
});

describe("write_request_log: the definer function checks the org", () => {
  test("the app role cannot write a row into another org's log, nor with another org's key", async () => {
    const mine = await createApiTenant(stack.db);
    const theirs = await createApiTenant(stack.db);
    const app = createNodeDb(roleUrl(testDatabaseUrl(), "layers_api"));
    try {
      const write = (requestId: string, orgId: string, keyId: string) =>
        writeRequestLog(app, {
          requestId,
          clientRequestId: null,
          orgId,
          apiKeyId: keyId,
          method: "GET",
          route: "/v1/org",
          status: 200,
          latencyMs: 1,
          occurredAt: new Date(),
        });
      const forged = [
        [`req_forged_${randomUUID()}`, theirs.orgId, mine.keyId],
        [`req_forged_${randomUUID()}`, mine.orgId, theirs.keyId],
        [`req_forged_${randomUUID()}`, theirs.orgId, "key_doesnotexist0000000"],
      ] as const;
      for (const [requestId, orgId, keyId] of forged) {
        await expect(write(requestId, orgId, keyId)).rejects.toThrow(/not a key of this org/);
      }
      const ok = `req_genuine_${randomUUID()}`;
      await write(ok, mine.orgId, mine.keyId);
      const rows = await stack.db
        .selectFrom("request_logs")
        .select(["request_id", "org_id"])
        .where("request_id", "in", [ok, ...forged.map(([id]) => id)])
        .execute();
      expect(rows).toEqual([{ request_id: ok, org_id: mine.orgId }]);
    } finally {
      await app.destroy();
    }
  });
});

describe("writeRequestLogs: a batch of rows in one statement (the API batches its isolate's rows)", () => {
  test("stores every row of a batch; a batch holding one forged row stores none of them", async () => {
    const mine = await createApiTenant(stack.db);
    const theirs = await createApiTenant(stack.db);
    const app = createNodeDb(roleUrl(testDatabaseUrl(), "layers_api"));
    const row = (orgId: string, apiKeyId: string): RequestLogEntry => ({
      requestId: `req_batch_${randomUUID()}`,
      clientRequestId: null,
      orgId,
      apiKeyId,
      method: "GET",
      route: "/v1/projects",
      status: 200,
      latencyMs: 2.4,
      occurredAt: new Date("2026-05-01T10:00:00.000Z"),
    });
    const stored = (ids: string[]) =>
      stack.db
        .selectFrom("request_logs")
        .select(["request_id", "org_id", "api_key_id", "latency_ms"])
        .where("request_id", "in", ids)
        .orderBy("request_id")
        .execute();
    try {
      const genuine = [
        row(mine.orgId, mine.keyId),
        row(theirs.orgId, theirs.keyId),
        row(mine.orgId, mine.keyId),
      ];
      await writeRequestLogs(app, genuine);
      expect(await stored(genuine.map((r) => r.requestId))).toEqual(
        genuine
          .map((r) => ({ request_id: r.requestId, org_id: r.orgId, api_key_id: r.apiKeyId, latency_ms: 2 }))
          .sort((a, b) => a.request_id.localeCompare(b.request_id)),
      );

      // The definer function checks each row: a row naming another org's key refuses the whole statement.
      const mixed = [row(mine.orgId, mine.keyId), row(theirs.orgId, mine.keyId)];
      await expect(writeRequestLogs(app, mixed)).rejects.toThrow(/not a key of this org/);
      expect(await stored(mixed.map((r) => r.requestId))).toEqual([]);
    } finally {
      await app.destroy();
    }
  });
});

// 401 (no, malformed, unknown, revoked, rotated-out, expired keys), 403 for read_only, developer and
// project-restricted keys, nothing changed: the shared suite.
describeRouteSecurity(() => stack, "Request logs");

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
      const response = await api(stack, owner.secret).get(`/v1/request-logs?${query}`);
      expect(response.status, query).toBe(400);
      expect(response.error.code).toBe("invalid_request");
    }
  });

  test("another org's requests never appear; a refused (403) call is itself logged", async () => {
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
      expect(refused.error().code).toBe("forbidden");
      // The refusal itself is recorded, like any authenticated request.
      const row = (await logged([refused.requestId])).get(refused.requestId);
      expect(row).toMatchObject({ api_key_id: key.keyId, route: "/v1/request-logs", status: 403 });
    }
    const admin = await addApiKey(stack.db, mine.orgId, "admin");
    expect((await listLogs(admin)).data.length).toBeGreaterThan(0);
  });
});
