import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { bearer, createApiTenant } from "../../support/apiTenant";
import { documentedSchema } from "../../support/openapiSchema";
import { type Stack, startStack } from "../../support/stack";

// What a client generator and a reader of /docs rely on beyond the routes themselves: every operation is
// named (operationId) and described, its answers list the headers the API really sends, and the errors any
// request can meet (413, 415, 500, …) are documented with the body the API really answers.

let stack: Stack;
beforeAll(async () => {
  stack = await startStack({ consumer: "recorder" });
});
afterAll(() => stack?.dispose());

type JsonObject = Record<string, unknown>;
interface Response_ {
  headers?: Record<string, { $ref?: string }>;
  content?: Record<string, { schema?: JsonObject }>;
}
interface Operation {
  operationId?: string;
  summary?: string;
  description?: string;
  parameters?: { name: string; in: string }[];
  requestBody?: unknown;
  responses: Record<string, Response_>;
}
interface OpenApiDocument {
  servers?: { url: string }[];
  paths: Record<string, Record<string, Operation>>;
  components: { headers?: Record<string, JsonObject>; schemas: Record<string, JsonObject> };
}

async function fetchDocument(): Promise<OpenApiDocument> {
  const response = await stack.api("/v1/openapi.json");
  expect(response.status).toBe(200);
  return (await response.json()) as OpenApiDocument;
}

function operations(doc: OpenApiDocument) {
  return Object.entries(doc.paths).flatMap(([path, item]) =>
    Object.entries(item).map(([method, operation]) => ({
      label: `${method.toUpperCase()} ${path}`,
      method,
      operation,
    })),
  );
}

const headerNames = (response: Response_) => Object.keys(response.headers ?? {});
const takesIdempotencyKey = (operation: Operation) =>
  (operation.parameters ?? []).some((p) => p.in === "header" && p.name.toLowerCase() === "idempotency-key");

describe("OpenAPI operations", () => {
  test("every operation has a unique camelCase operationId, a summary and a description", async () => {
    const ops = operations(await fetchDocument());
    expect(ops.length).toBeGreaterThan(30);
    for (const { label, operation } of ops) {
      expect(operation.operationId, label).toMatch(/^[a-z][A-Za-z0-9]+$/);
      expect(operation.summary?.trim(), label).toBeTruthy();
      expect(operation.description?.trim(), label).toBeTruthy();
    }
    const ids = ops.map((o) => o.operation.operationId);
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids).toEqual(expect.arrayContaining(["createProject", "listProjects", "rotateApiKey"]));
  });

  test("every answer documents X-Request-Id; rate-limit, Retry-After and Idempotent-Replayed where they apply", async () => {
    const doc = await fetchDocument();
    const components = doc.components.headers ?? {};
    let replayable = 0;
    for (const { label, operation } of operations(doc)) {
      for (const [status, response] of Object.entries(operation.responses)) {
        const where = `${label} ${status}`;
        const names = headerNames(response);
        expect(names, where).toContain("X-Request-Id");
        if (status !== "401") {
          expect(names, where).toEqual(
            expect.arrayContaining(["RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset"]),
          );
        }
        expect(names.includes("Retry-After"), where).toBe(status === "429");
        if (status.startsWith("2")) {
          expect(names.includes("Idempotent-Replayed"), where).toBe(takesIdempotencyKey(operation));
        }
        // Each header is a reference to a component that exists under the same name.
        for (const [name, header] of Object.entries(response.headers ?? {})) {
          expect(header.$ref, where).toBe(`#/components/headers/${name}`);
          expect(components[name], `${where}: component ${name}`).toMatchObject({
            description: expect.any(String),
          });
        }
      }
      if (takesIdempotencyKey(operation)) replayable += 1;
    }
    expect(replayable).toBeGreaterThan(10);
  });

  test("400 where the request is validated, 413 where a body may be sent, 415 for JSON bodies, 500 everywhere", async () => {
    const doc = await fetchDocument();
    for (const { label, method, operation } of operations(doc)) {
      const expected = ["401", "429", "500", "503"];
      if ((operation.parameters ?? []).length > 0 || operation.requestBody) expected.push("400");
      if (method !== "get") expected.push("413");
      if (operation.requestBody) expected.push("415");
      for (const status of expected) {
        expect(
          operation.responses[status]?.content?.["application/json"]?.schema,
          `${label} ${status}`,
        ).toEqual({
          $ref: "#/components/schemas/Error",
        });
      }
      if (method === "get") expect(operation.responses["413"], label).toBeUndefined();
    }
  });

  test("the headers documented for an answer are the ones the API sends", async () => {
    const doc = await fetchDocument();
    const owner = await createApiTenant(stack.db);
    const request = () =>
      stack.api("/v1/projects", {
        method: "POST",
        headers: bearer(owner.secret, {
          "Idempotency-Key": "doc-headers-1",
          "X-Request-Id": "client-req-0001",
        }),
        body: JSON.stringify({ name: "Headers app" }),
      });
    const first = await request();
    expect(first.status).toBe(201);
    const replayed = await request();
    expect(replayed.status).toBe(201);
    expect(replayed.headers.get("Idempotent-Replayed")).toBe("true");

    const documented = headerNames(doc.paths["/v1/projects"]!.post!.responses["201"]!);
    for (const name of documented) expect(replayed.headers.get(name), name).not.toBeNull();
    for (const name of documented.filter((n) => n !== "Idempotent-Replayed")) {
      expect(first.headers.get(name), name).not.toBeNull();
    }
    expect(first.headers.get("Idempotent-Replayed")).toBeNull();
  });

  test("real 413 and 415 answers validate against the documented Error schema", async () => {
    const doc = await fetchDocument();
    const owner = await createApiTenant(stack.db);
    const responses = doc.paths["/v1/projects"]!.post!.responses;

    const tooLarge = await stack.api("/v1/projects", {
      method: "POST",
      headers: bearer(owner.secret),
      body: JSON.stringify({ name: "x".repeat(1_048_577) }),
    });
    const notJson = await stack.api("/v1/projects", {
      method: "POST",
      headers: bearer(owner.secret, { "Content-Type": "text/plain" }),
      body: JSON.stringify({ name: "Plain app" }),
    });
    for (const [response, status, code] of [
      [tooLarge, 413, "payload_too_large"],
      [notJson, 415, "unsupported_media_type"],
    ] as const) {
      expect(response.status).toBe(status);
      const body = (await response.json()) as { error: { code: string; requestId: string } };
      const schema = documentedSchema(doc, responses[String(status)]!.content!["application/json"]!.schema, {
        closed: true,
      });
      const parsed = schema.safeParse(body);
      expect(parsed.success, `${status}: ${parsed.error?.message}`).toBe(true);
      expect(body.error.code).toBe(code);
      expect(body.error.requestId).toBe(response.headers.get("X-Request-Id"));
    }
    // Not vacuous: the documented schema refuses a body of another shape.
    const schema = documentedSchema(doc, responses["413"]!.content!["application/json"]!.schema);
    expect(schema.safeParse({ error: { code: "payload_too_large" } }).success).toBe(false);
    expect(schema.safeParse({ message: "too large" }).success).toBe(false);
  });

  test("the document's server is the origin that served it, never production for a local Worker", async () => {
    const served = await fetchDocument();
    expect(served.servers).toEqual([{ url: "http://api.test" }]);
    const worker = await stack.mf.getWorker("api");
    const local = (await (
      await worker.fetch("http://127.0.0.1:8788/v1/openapi.json")
    ).json()) as OpenApiDocument;
    expect(local.servers).toEqual([{ url: "http://127.0.0.1:8788" }]);
  });
});
