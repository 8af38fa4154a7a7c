import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { createApiTenant } from "../../support/apiTenant";
import type { TestSendResult } from "../../support/apiTypes";
import { type FakePlatforms, startFakePlatforms } from "../../support/fakePlatforms";
import { sha256 } from "../../support/sha256";
import { type Stack, startStack } from "../../support/stack";
import { Calls, createProjectVia, META_TOKEN, metaBody, TIKTOK_TOKEN, tiktokBody } from "./support";

// Test-send: one synthetic event through the relay's own sender to the (fake) platform, which checks the
// documented payload and the token; the answer is the platform's verdict, never the token.

let stack: Stack;
let fakes: FakePlatforms;
let calls: Calls;
beforeAll(async () => {
  fakes = await startFakePlatforms({ hangMs: 3_000 });
  stack = await startStack({
    consumer: "recorder",
    apiVars: { ...fakes.vars, DESTINATION_TEST_TIMEOUT_MS: "1000" },
  });
  calls = new Calls(stack);
});
afterAll(async () => {
  await stack?.dispose();
  await fakes?.close();
});

async function projectWith(kind: "meta" | "tiktok", body: Record<string, unknown>) {
  const owner = await createApiTenant(stack.db);
  const projectId = await createProjectVia(calls, owner.secret);
  const put = await calls.send(owner.secret, "PUT", `/v1/projects/${projectId}/destinations/${kind}`, body);
  expect(put.status).toBe(201);
  return { owner, projectId, path: `/v1/projects/${projectId}/destinations/${kind}/test` };
}

describe("destinations: test-send", () => {
  test("Meta: delivered; the platform got one valid event with the test code and the decrypted token", async () => {
    const datasetId = "700000000000001";
    fakes.meta.tokens.set(datasetId, META_TOKEN);
    const { owner, path } = await projectWith("meta", metaBody({ datasetId, testEventCode: "TEST999" }));
    const before = fakes.meta.requests.length;

    const sent = await calls.send<TestSendResult>(owner.secret, "POST", path);
    expect(sent.status).toBe(200);
    const result = sent.body;
    expect(result).toMatchObject({
      object: "destination_test",
      kind: "meta",
      outcome: "delivered",
      platformStatus: 200,
      error: null,
    });
    expect(fakes.meta.requests.length).toBe(before + 1);
    const request = JSON.parse(fakes.meta.requests.at(-1)?.body ?? "{}");
    expect(request.test_event_code).toBe("TEST999");
    expect(request.data).toHaveLength(1);
    expect(request.data[0]).toMatchObject({
      event_id: result.eventId,
      event_name: "layers_purchase",
      user_data: { external_id: [sha256("layers-test-send")] },
    });
    expect(fakes.meta.accepted.has(result.eventId)).toBe(true);
    expect(sent.text).not.toContain(META_TOKEN);

    const audit = await stack.db
      .selectFrom("audit_log")
      .select(["action", "changes"])
      .where("org_id", "=", owner.orgId)
      .where("action", "=", "destination.test_sent")
      .executeTakeFirstOrThrow();
    expect(audit.changes).toMatchObject({ after: { outcome: "delivered", platformStatus: 200 } });
  });

  test("Meta with a token the platform refuses: outcome rejected with Meta's message, the token cut from it", async () => {
    const datasetId = "700000000000002";
    fakes.meta.tokens.set(datasetId, "EAAsomeOtherTokenTheFakeExpects0000");
    const { owner, path } = await projectWith("meta", metaBody({ datasetId }));
    const sent = await calls.send<TestSendResult>(owner.secret, "POST", path);
    expect(sent.status).toBe(200);
    expect(sent.body).toMatchObject({
      outcome: "rejected",
      platformStatus: 400,
      error: expect.stringContaining("Invalid OAuth access token"),
    });
    expect(sent.text).not.toContain(META_TOKEN);
  });

  test("TikTok: delivered as CompletePayment with the test code and Access-Token header", async () => {
    const pixelCode = "TESTPIXEL000000000001";
    fakes.tiktok.tokens.set(pixelCode, TIKTOK_TOKEN);
    const { owner, path } = await projectWith("tiktok", tiktokBody({ pixelCode, testEventCode: "TEST123" }));
    const sent = await calls.send<TestSendResult>(owner.secret, "POST", path);
    expect(sent.body).toMatchObject({
      kind: "tiktok",
      outcome: "delivered",
      platformStatus: 200,
    });
    const last = fakes.tiktok.requests.at(-1);
    expect(last?.headers["access-token"]).toBe(TIKTOK_TOKEN);
    const request = JSON.parse(last?.body ?? "{}");
    expect(request).toMatchObject({ event_source_id: pixelCode, test_event_code: "TEST123" });
    expect(request.data[0]).toMatchObject({
      event: "CompletePayment",
      user: { external_id: sha256("layers-test-send") },
    });
    expect(sent.text).not.toContain(TIKTOK_TOKEN);
  });

  test("a platform outage (500) or no answer in time → outcome retry, still a 200 answer", async () => {
    const pixelCode = "TESTPIXEL000000000002";
    fakes.tiktok.tokens.set(pixelCode, TIKTOK_TOKEN);
    const { owner, path } = await projectWith("tiktok", tiktokBody({ pixelCode }));
    fakes.tiktok.failNext(1, { kind: "status", status: 500 });
    const down = await calls.send<TestSendResult>(owner.secret, "POST", path);
    expect(down.body).toMatchObject({ outcome: "retry", platformStatus: 500 });
    fakes.tiktok.failNext(1, { kind: "hang", afterAccept: false });
    const hung = await calls.send<TestSendResult>(owner.secret, "POST", path);
    expect(hung.body).toMatchObject({
      outcome: "retry",
      platformStatus: null,
      error: expect.stringContaining("no answer within 1000 ms"),
    });
  });

  test("with an Idempotency-Key, a retried test-send replays the answer and sends nothing twice", async () => {
    const datasetId = "700000000000003";
    fakes.meta.tokens.set(datasetId, META_TOKEN);
    const { owner, path } = await projectWith("meta", metaBody({ datasetId }));
    const before = fakes.meta.requests.length;
    const first = await calls.send(owner.secret, "POST", path, undefined, {
      "Idempotency-Key": "test-send-1",
    });
    const second = await calls.send(owner.secret, "POST", path, undefined, {
      "Idempotency-Key": "test-send-1",
    });
    expect(second.headers.get("Idempotent-Replayed")).toBe("true");
    expect(second.text).toBe(first.text);
    expect(fakes.meta.requests.length).toBe(before + 1);
  });

  test("no answer and no log line of this file carried a token", () => {
    const text = `${calls.bodies.join("\n")}\n${stack.logs.join("\n")}`;
    for (const secret of [META_TOKEN, TIKTOK_TOKEN]) expect(text).not.toContain(secret);
  });
});
