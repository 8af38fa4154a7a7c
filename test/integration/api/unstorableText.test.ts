import { afterAll, beforeAll, expect, test } from "vitest";
import { api } from "../../support/api";
import { createApiTenant } from "../../support/apiTenant";
import type { Project } from "../../support/apiTypes";
import { type Stack, startStack } from "../../support/stack";

// Strings JSON accepts and Postgres refuses are bad input on the partner API too: a 400 with a clear message
// before anything runs, never a 500 from half-way inside a transaction, and nothing stored.

let stack: Stack;
beforeAll(async () => {
  stack = await startStack({ consumer: "recorder" });
});
afterAll(() => stack?.dispose());

test.each([
  ["an unpaired surrogate", '{"name":"Shop \\ud800"}', "surrogate"],
  ["a lone low surrogate in a key", '{"name":"Shop","\\udc00":1}', "surrogate"],
  ["a NUL character", '{"name":"Shop \\u0000"}', "NUL"],
])("%s in a JSON body → 400 invalid_request, nothing created, nothing remembered", async (_, body, word) => {
  const owner = await createApiTenant(stack.db);
  const res = await api(stack, owner.secret).post("/v1/projects", undefined, {
    rawBody: body,
    idempotencyKey: "unstorable",
  });
  expect(res.status).toBe(400);
  const error = res.error;
  expect(error.code).toBe("invalid_request");
  expect(error.message).toContain(word);
  const projects = await stack.db
    .selectFrom("projects")
    .select("id")
    .where("org_id", "=", owner.orgId)
    .execute();
  expect(projects).toEqual([]);
  const keys = await stack.db
    .selectFrom("idempotency_keys")
    .select("idempotency_key")
    .where("org_id", "=", owner.orgId)
    .execute();
  expect(keys).toEqual([]);
});

test("an emoji (a proper surrogate pair) is stored as sent", async () => {
  const owner = await createApiTenant(stack.db);
  const res = await api(stack, owner.secret).post<never, Project>("/v1/projects", undefined, {
    rawBody: '{"name":"Shop \\ud83d\\ude00"}',
  });
  expect(res.status).toBe(201);
  expect(res.body.name).toBe("Shop 😀");
});
