import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { documentedSchema } from "../support/openapiSchema";
import { type Stack, startStack } from "../support/stack";
import { createTenant } from "../support/tenant";

// GET /l/openapi.json describes POST /l/events for SDK authors and client generators. Its request schemas
// are generated from the zod schemas ingest validates with; these tests hold the document to the running
// ingest Worker: real answers validate against what it declares.

let stack: Stack;
beforeAll(async () => {
  stack = await startStack({ consumer: "recorder" });
});
afterAll(() => stack?.dispose());

type JsonObject = Record<string, unknown>;
interface Operation {
  operationId: string;
  requestBody: { required: boolean; content: Record<string, { schema: JsonObject }> };
  responses: Record<string, { content?: Record<string, { schema: JsonObject }>; headers?: JsonObject }>;
}
interface IngestDocument {
  openapi: string;
  servers: { url: string }[];
  security: JsonObject[];
  components: { securitySchemes: Record<string, JsonObject>; schemas: Record<string, JsonObject> };
  paths: Record<string, Record<string, Operation>>;
}

/** A request with the key in the URL (as a browser beacon sends it). */
function inUrl(key: string, contentType: string, authorization?: string): Promise<Response> {
  return stack.mf.dispatchFetch(`http://ingest.test/l/events?key=${key}`, {
    method: "POST",
    headers: { "Content-Type": contentType, ...(authorization && { Authorization: authorization }) },
    body: JSON.stringify({ name: "x" }),
  }) as unknown as Promise<Response>;
}

async function fetchDocument(): Promise<IngestDocument> {
  const response = await stack.mf.dispatchFetch("http://ingest.test/l/openapi.json");
  expect(response.status).toBe(200);
  expect(response.headers.get("content-type")).toContain("application/json");
  return (await response.json()) as IngestDocument;
}

const sendEvents = (doc: IngestDocument) => doc.paths["/l/events"]!.post!;
const answerSchema = (doc: IngestDocument, status: number) =>
  documentedSchema(doc, sendEvents(doc).responses[String(status)]!.content!["application/json"]!.schema, {
    closed: true,
  });

describe("ingest OpenAPI document", () => {
  test("is OpenAPI 3.1 declaring POST /l/events with the SDK key, its body, 202 and every error", async () => {
    const doc = await fetchDocument();
    expect(doc.openapi).toBe("3.1.0");
    expect(doc.servers).toEqual([{ url: "http://ingest.test" }]);
    expect(doc.components.securitySchemes.sdkKey).toMatchObject({ type: "http", scheme: "bearer" });
    expect(doc.components.securitySchemes.sdkKeyInUrl).toMatchObject({
      type: "apiKey",
      in: "query",
      name: "key",
    });
    expect(doc.security).toEqual([{ sdkKey: [] }, { sdkKeyInUrl: [] }]);
    expect(Object.keys(doc.paths)).toEqual([
      "/l/events",
      "/v1/batch",
      "/v1/b",
      "/v1/import",
      "/v1/track",
      "/v1/identify",
      "/v1/page",
      "/v1/screen",
      "/v1/group",
      "/v1/alias",
    ]);
    const op = sendEvents(doc);
    expect(op.operationId).toBe("sendEvents");
    expect(op.requestBody.required).toBe(true);
    expect(Object.keys(op.requestBody.content)).toEqual(["application/json", "text/plain"]);
    expect(Object.keys(op.responses).sort()).toEqual([
      "202",
      "400",
      "401",
      "403",
      "413",
      "415",
      "429",
      "500",
      "503",
    ]);
    expect(op.responses["429"]!.headers).toHaveProperty("Retry-After");
    // Limits from shared/limits.ts, as generated from the zod schemas.
    const batch = doc.components.schemas.EventBatch as { properties: { events: JsonObject } };
    expect(batch.properties.events).toMatchObject({ minItems: 1, maxItems: 500 });
    const event = doc.components.schemas.SdkEvent as { required: string[]; properties: JsonObject };
    expect(event.required).toEqual(["name"]);
    expect(event.properties.name).toMatchObject({ type: "string", minLength: 1, maxLength: 128 });
  });

  test("the request schema accepts what ingest accepts and refuses an invalid envelope", async () => {
    const doc = await fetchDocument();
    const body = documentedSchema(doc, sendEvents(doc).requestBody.content["application/json"]!.schema);
    const batch = {
      sentAt: "2026-11-23T12:00:00.000Z",
      events: [
        { eventId: "e-doc-1", name: "purchase", timestamp: 1_795_000_000_000, properties: { value: 1 } },
      ],
    };
    expect(body.safeParse(batch).success).toBe(true);
    expect(body.safeParse({ name: "bare_event" }).success).toBe(true);
    expect(body.safeParse({ events: [] }).success).toBe(false);
    expect(body.safeParse({ sentAt: "yesterday", events: [{ name: "x" }] }).success).toBe(false);

    const { sdkKey } = await createTenant(stack.db);
    const accepted = await stack.ingest(batch, { key: sdkKey });
    expect(accepted.status).toBe(202);
  });

  test("a real 202 and real 400/401/413 answers validate against the documented schemas", async () => {
    const doc = await fetchDocument();
    const { sdkKey } = await createTenant(stack.db);

    const partly = await stack.ingest(
      {
        events: [
          { eventId: "e-doc-2", name: "signup" },
          { eventId: "e-doc-3", name: "" },
        ],
      },
      { key: sdkKey },
    );
    expect(partly.status).toBe(202);
    const answer = await partly.json();
    expect(answer).toMatchObject({ accepted: 1, rejected: [{ index: 1, code: "invalid_event" }] });
    expect(answerSchema(doc, 202).safeParse(answer).success).toBe(true);

    const cases = [
      [400, "invalid_json", await stack.ingest(null, { key: sdkKey, rawBody: "{not json" })],
      [400, "invalid_events", await stack.ingest({ events: [{ name: "" }] }, { key: sdkKey })],
      [401, "unauthorized", await stack.ingest({ name: "x" }, { key: "lp_pk_nope" })],
      [413, "payload_too_large", await stack.ingest(null, { key: sdkKey, rawBody: "x".repeat(600 * 1024) })],
      [415, "unsupported_media_type", await inUrl(sdkKey, "application/x-www-form-urlencoded")],
      [400, "invalid_request", await inUrl(sdkKey, "text/plain", `Bearer ${sdkKey}`)],
    ] as const;
    for (const [status, code, response] of cases) {
      expect(response.status, code).toBe(status);
      const body = await response.json();
      const parsed = answerSchema(doc, status).safeParse(body);
      expect(parsed.success, `${status} ${code}: ${parsed.error?.message}`).toBe(true);
      expect((body as { error: { code: string } }).error.code).toBe(code);
    }
    // Not vacuous: the documented shapes refuse each other's bodies.
    expect(answerSchema(doc, 202).safeParse({ error: { code: "invalid_json" } }).success).toBe(false);
    expect(answerSchema(doc, 400).safeParse(answer).success).toBe(false);
  });

  test("Segment's routes: Basic auth, their 200 and 400/401 answers validate against the documented schemas", async () => {
    const doc = await fetchDocument();
    expect(doc.components.securitySchemes.segmentWriteKey).toMatchObject({ type: "http", scheme: "basic" });
    const batchOp = doc.paths["/v1/batch"]!.post! as Operation & { security: JsonObject[] };
    expect(batchOp.security).toEqual([{ segmentWriteKey: [] }]);
    expect(Object.keys(batchOp.responses).sort()).toEqual(["200", "400", "401", "403", "429", "500", "503"]);
    const schemaOf = (path: string, status: number) =>
      documentedSchema(
        doc,
        doc.paths[path]!.post!.responses[String(status)]!.content!["application/json"]!.schema,
        {
          closed: true,
        },
      );
    const requestOf = (path: string) =>
      documentedSchema(doc, doc.paths[path]!.post!.requestBody.content["application/json"]!.schema);

    const batch = {
      sentAt: "2026-11-23T12:00:00.000Z",
      batch: [
        {
          type: "track",
          messageId: "seg-doc-1",
          userId: "u",
          event: "Signed Up",
          context: { ip: "ignored" },
        },
        { type: "track", messageId: "seg-doc-2", userId: "u" },
      ],
    };
    expect(requestOf("/v1/batch").safeParse(batch).success).toBe(true);
    expect(requestOf("/v1/batch").safeParse({ batch: [] }).success).toBe(false);
    expect(requestOf("/v1/track").safeParse(batch.batch[0]).success).toBe(true);

    const { sdkKey } = await createTenant(stack.db);
    const send = (path: string, body: string, user = sdkKey) =>
      stack.mf.dispatchFetch(`http://ingest.test${path}`, {
        method: "POST",
        headers: { Authorization: `Basic ${btoa(`${user}:`)}`, "Content-Type": "application/json" },
        body,
      }) as unknown as Promise<Response>;
    const ok = await send("/v1/batch", JSON.stringify(batch));
    expect(ok.status).toBe(200);
    const answer = await ok.json();
    expect(answer).toMatchObject({
      success: true,
      accepted: 1,
      rejected: [{ index: 1, code: "invalid_event" }],
    });
    expect(schemaOf("/v1/batch", 200).safeParse(answer).success).toBe(true);

    const cases = [
      [400, "invalid_json", await send("/v1/batch", "{not json")],
      [
        400,
        "message_too_large",
        await send("/v1/track", JSON.stringify({ userId: "u", event: "x".repeat(40_000) })),
      ],
      [400, "batch_too_large", await send("/v1/batch", "x".repeat(600 * 1024))],
      [401, "unauthorized", await send("/v1/batch", JSON.stringify(batch), "lp_pk_nope")],
    ] as const;
    for (const [status, code, response] of cases) {
      expect(response.status, code).toBe(status);
      const body = await response.json();
      const parsed = schemaOf("/v1/batch", status).safeParse(body);
      expect(parsed.success, `${status} ${code}: ${parsed.error?.message}`).toBe(true);
      expect((body as { error: { code: string } }).error.code).toBe(code);
    }
    expect(schemaOf("/v1/batch", 200).safeParse({ error: { code: "invalid_json" } }).success).toBe(false);
  });
});
