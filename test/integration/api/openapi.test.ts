import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { createApiApp } from "../../../workers/api/app";
import { DOCS_ASSETS } from "../../../workers/api/docs";
import { bearer, createApiTenant } from "../../support/apiTenant";
import { type Stack, startStack } from "../../support/stack";

// The OpenAPI document is generated from the same zod schemas that validate requests. These tests hold it
// to the app itself: every route the app registers is documented (and nothing else), and every request
// example in it is accepted, both by its own schema and by the running API Worker.

let stack: Stack;
beforeAll(async () => {
  stack = await startStack({ consumer: "recorder" });
});
afterAll(() => stack?.dispose());

type JsonObject = Record<string, unknown>;
interface MediaType {
  schema?: JsonObject;
  example?: unknown;
  examples?: Record<string, { value?: unknown }>;
}
interface Operation {
  requestBody?: { required?: boolean; content?: Record<string, MediaType> };
  responses?: Record<string, unknown>;
}
interface OpenApiDocument {
  openapi: string;
  info: { title: string; version: string };
  paths: Record<string, Record<string, Operation>>;
  components?: { schemas?: Record<string, JsonObject>; securitySchemes?: Record<string, JsonObject> };
  security?: Record<string, string[]>[];
}

const HTTP_METHODS = new Set(["get", "post", "put", "patch", "delete"]);
/** Served without authentication and not part of the API itself. */
const UNDOCUMENTED = new Set([
  "GET /v1/openapi.json",
  "GET /docs",
  // Read with the receipt's own token, not an API key (README, "Project and org deletion").
  "GET /v1/org-deletion-receipts/{receiptId}",
  ...Object.values(DOCS_ASSETS).map((path) => `GET ${path}`),
]);

async function fetchDocument(): Promise<OpenApiDocument> {
  const response = await stack.api("/v1/openapi.json");
  expect(response.status).toBe(200);
  expect(response.headers.get("content-type")).toContain("application/json");
  return (await response.json()) as OpenApiDocument;
}

function operations(doc: OpenApiDocument): { method: string; path: string; operation: Operation }[] {
  return Object.entries(doc.paths).flatMap(([path, item]) =>
    Object.entries(item)
      .filter(([method]) => HTTP_METHODS.has(method))
      .map(([method, operation]) => ({ method: method.toUpperCase(), path, operation })),
  );
}

/** A local `$ref` ("#/components/schemas/CreateProject") → the object it points at. */
function resolve(doc: OpenApiDocument, value: JsonObject | undefined): JsonObject | undefined {
  const ref = value?.$ref;
  if (typeof ref !== "string") return value;
  const target = ref
    .replace(/^#\//, "")
    .split("/")
    .reduce<unknown>((node, part) => (node as JsonObject | undefined)?.[part], doc);
  return target as JsonObject | undefined;
}

/** Every example a request body declares: on the media type, in `examples`, or on its (referenced) schema. */
function bodyExamples(doc: OpenApiDocument, media: MediaType): unknown[] {
  const found: unknown[] = [];
  if (media.example !== undefined) found.push(media.example);
  for (const named of Object.values(media.examples ?? {}))
    if (named.value !== undefined) found.push(named.value);
  const schema = resolve(doc, media.schema);
  if (schema?.example !== undefined) found.push(schema.example);
  if (Array.isArray(schema?.examples)) found.push(...schema.examples);
  return found;
}

describe("OpenAPI document", () => {
  test("GET /v1/openapi.json needs no key and is OpenAPI 3.1 with bearer security", async () => {
    const doc = await fetchDocument();
    expect(doc.openapi).toBe("3.1.0");
    expect(doc.info).toMatchObject({ title: "Layers partner API", version: expect.any(String) });
    expect(doc.components?.securitySchemes?.apiKey).toEqual({ type: "http", scheme: "bearer" });
    expect(doc.security).toEqual([{ apiKey: [] }]);
  });

  test("documents exactly the routes the app registers", async () => {
    const app = createApiApp();
    const registered = new Set(
      app.routes
        .filter((r) => r.method !== "ALL")
        .map((r) => `${r.method} ${r.path.replace(/:(\w+)(\{[^}]*\})?/g, "{$1}")}`)
        .filter((route) => !UNDOCUMENTED.has(route)),
    );
    const documented = operations(await fetchDocument()).map((o) => `${o.method} ${o.path}`);
    expect(new Set(documented).size).toBe(documented.length);
    expect([...documented].sort()).toEqual([...registered].sort());
    // Not vacuous: the list holds the routes we know of, params in OpenAPI form.
    expect(documented).toEqual(
      expect.arrayContaining([
        "POST /v1/projects",
        "PATCH /v1/projects/{projectId}",
        "POST /v1/api-keys/{keyId}/rotate",
        "DELETE /v1/members/{memberId}",
        "GET /v1/audit-log",
        "GET /v1/request-logs",
      ]),
    );
  });

  test("every operation documents its success and the common error responses", async () => {
    const doc = await fetchDocument();
    for (const { method, path, operation } of operations(doc)) {
      const statuses = Object.keys(operation.responses ?? {});
      expect(
        statuses.some((s) => s.startsWith("2")),
        `${method} ${path}`,
      ).toBe(true);
      expect(statuses, `${method} ${path}`).toEqual(expect.arrayContaining(["401", "429"]));
    }
  });

  test("every request body has an example, valid for its own zod schema and accepted by the API", async () => {
    const doc = await fetchDocument();
    const app = createApiApp();
    const owner = await createApiTenant(stack.db);
    const withBodies = operations(doc).filter((o) => o.operation.requestBody);
    expect(withBodies.length).toBeGreaterThanOrEqual(5);

    for (const { method, path, operation } of withBodies) {
      const label = `${method} ${path}`;
      const media = operation.requestBody?.content?.["application/json"];
      expect(media, label).toBeDefined();
      const examples = bodyExamples(doc, media!);
      expect(examples.length, `${label} has no request example`).toBeGreaterThan(0);

      // 1. The zod schema the route validates with (the document was generated from it).
      const definition = app.openAPIRegistry.definitions.find(
        (d) => d.type === "route" && d.route.method.toUpperCase() === method && d.route.path === path,
      );
      const zodMedia =
        definition?.type === "route"
          ? definition.route.request?.body?.content["application/json"]
          : undefined;
      const schema = zodMedia && "schema" in zodMedia ? zodMedia.schema : undefined;
      expect(schema && "safeParse" in schema, `${label}: no zod body schema`).toBe(true);

      for (const example of examples) {
        if (schema && "safeParse" in schema) {
          const parsed = schema.safeParse(example);
          expect(
            parsed.success,
            `${label} example ${JSON.stringify(example)}: ${parsed.error?.message}`,
          ).toBe(true);
        }
        // 2. The running API: path ids that do not exist make a valid request end in 404, after validation
        // has passed; an example the API rejects would be a 400.
        const concrete = path.replace(/\{(\w+)\}/g, (_m, name: string) => `${name}_example00000000`);
        const response = await stack.api(concrete, {
          method,
          headers: bearer(owner.secret),
          body: JSON.stringify(example),
        });
        const answer = await response.text();
        expect(response.status, `${label} → ${response.status} ${answer}`).not.toBe(400);
        expect(response.status, `${label} → ${response.status} ${answer}`).toBeLessThan(500);
      }
    }
  });

  test("an invalid body is a 400 on the same route (the check above can fail)", async () => {
    const owner = await createApiTenant(stack.db);
    const response = await stack.api("/v1/projects", {
      method: "POST",
      headers: bearer(owner.secret),
      body: JSON.stringify({ eventRetentionDays: 5 }),
    });
    expect(response.status).toBe(400);
  });

  test("GET /docs serves the HTML reference page for the document", async () => {
    const response = await stack.api("/docs");
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toContain("text/html");
    const html = await response.text();
    expect(html).toMatch(/<html/i);
    expect(html).toContain("/v1/openapi.json");
  });
});
