import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { ErrorSchema } from "../../../workers/api/schemas";
import { type ApiTenant, bearer, createApiTenant } from "../../support/apiTenant";
import { type Stack, startStack, waitFor } from "../../support/stack";

// The partner API reads at most 1 MB (1,048,576 bytes) of request body, counted as it streams, whether or
// not the client declared a Content-Length. A refused body changes nothing and binds no Idempotency-Key.

const LIMIT = 1_048_576;

let stack: Stack;
beforeAll(async () => {
  stack = await startStack({ consumer: "recorder" });
});
afterAll(() => stack?.dispose());

/** A valid create-project body of exactly `bytes` bytes (JSON whitespace pads it). */
function projectBody(name: string, bytes: number): string {
  const json = JSON.stringify({ name });
  return `${json.slice(0, -1)}${" ".repeat(bytes - json.length)}}`;
}

/** The same bytes as a stream of 64 KB chunks: sent chunked, without Content-Length. */
function chunked(text: string): ReadableStream<Uint8Array> {
  const bytes = new TextEncoder().encode(text);
  let offset = 0;
  return new ReadableStream({
    pull(controller) {
      if (offset >= bytes.length) {
        controller.close();
        return;
      }
      controller.enqueue(bytes.slice(offset, offset + 65_536));
      offset += 65_536;
    },
  });
}

function post(t: ApiTenant, body: string | ReadableStream<Uint8Array>, headers: Record<string, string> = {}) {
  const init: RequestInit & { duplex: "half" } = {
    method: "POST",
    headers: bearer(t.secret, headers),
    body,
    duplex: "half",
  };
  return stack.api("/v1/projects", init);
}

const projectsOf = (orgId: string) =>
  stack.db.selectFrom("projects").select("name").where("org_id", "=", orgId).orderBy("name").execute();
const idempotencyRows = (orgId: string) =>
  stack.db.selectFrom("idempotency_keys").select("idempotency_key").where("org_id", "=", orgId).execute();

describe("API request body limit", () => {
  test("exactly 1 MB is read; one byte more → 413 payload_too_large, with or without Content-Length", async () => {
    const owner = await createApiTenant(stack.db);
    const atLimit = await post(owner, projectBody("At the limit", LIMIT));
    expect(atLimit.status, await atLimit.clone().text()).toBe(201);
    const streamedAtLimit = await post(owner, chunked(projectBody("Streamed at the limit", LIMIT)));
    expect(streamedAtLimit.status).toBe(201);

    const refusals = [
      ["declared length", () => post(owner, projectBody("One byte over", LIMIT + 1))],
      ["chunked, no length", () => post(owner, chunked(projectBody("Streamed over", LIMIT + 1)))],
      ["chunked, 3 MB", () => post(owner, chunked(projectBody("Streamed far over", 3 * LIMIT)))],
    ] as const;
    for (const [label, send] of refusals) {
      const response = await send();
      expect(response.status, label).toBe(413);
      const body = ErrorSchema.parse(await response.json());
      expect(body.error.code, label).toBe("payload_too_large");
      expect(body.error.message).toContain(String(LIMIT));
      expect(body.error.requestId).toBe(response.headers.get("X-Request-Id"));
    }
    expect(await projectsOf(owner.orgId)).toEqual([
      { name: "At the limit" },
      { name: "Streamed at the limit" },
    ]);

    // The refusal is an authenticated request like any other: it has its request-log row, status 413.
    const refused = await post(owner, projectBody("Logged", LIMIT + 1));
    const requestId = refused.headers.get("X-Request-Id")!;
    const row = await waitFor(() =>
      stack.db
        .selectFrom("request_logs")
        .select(["status", "route"])
        .where("org_id", "=", owner.orgId)
        .where("request_id", "=", requestId)
        .executeTakeFirst(),
    );
    expect(row).toEqual({ status: 413, route: "/v1/projects" });
  });

  test("a refused body binds no Idempotency-Key: the same key then works with a normal body", async () => {
    const owner = await createApiTenant(stack.db);
    const key = `too-big-${randomUUID()}`;
    const refused = await post(owner, chunked(projectBody("Too big", LIMIT + 1)), { "Idempotency-Key": key });
    expect(refused.status).toBe(413);
    expect(await idempotencyRows(owner.orgId)).toEqual([]);
    expect(await projectsOf(owner.orgId)).toEqual([]);

    const accepted = await post(owner, JSON.stringify({ name: "Right size" }), { "Idempotency-Key": key });
    expect(accepted.status).toBe(201);
    expect(accepted.headers.get("Idempotent-Replayed")).toBeNull();
    expect(await projectsOf(owner.orgId)).toEqual([{ name: "Right size" }]);
  });
});
