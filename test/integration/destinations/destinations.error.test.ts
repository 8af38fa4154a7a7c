import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { errorDetails } from "../../support/api";
import { createApiTenant } from "../../support/apiTenant";
import type { DestinationList, ErrorBody } from "../../support/apiTypes";
import { type Stack, startStack } from "../../support/stack";
import { Calls, createProjectVia, META_TOKEN, metaBody, snapshot, tiktokBody } from "./support";

// Bad input: a clear 400 with a stable code naming the field, never a 500, nothing stored or audited, and
// the token never echoed back (not even when it is the invalid field).

let stack: Stack;
let calls: Calls;
beforeAll(async () => {
  stack = await startStack({ consumer: "recorder" });
  calls = new Calls(stack);
});
afterAll(() => stack?.dispose());

describe("destinations: errors", () => {
  test("each invalid PUT → 400 invalid_request naming the field; nothing stored or audited", async () => {
    const owner = await createApiTenant(stack.db);
    const projectId = await createProjectVia(calls, owner.secret);
    const base = `/v1/projects/${projectId}/destinations`;
    const before = await snapshot(stack.db, owner.orgId);
    const cases: [string, string, unknown, string][] = [
      ["meta", "dataset id with letters", metaBody({ datasetId: "12345abc" }), "datasetId"],
      ["meta", "dataset id too short", metaBody({ datasetId: "1234" }), "datasetId"],
      ["meta", "dataset id too long", metaBody({ datasetId: "1".repeat(21) }), "datasetId"],
      ["meta", "missing dataset id", { accessToken: META_TOKEN }, "datasetId"],
      ["meta", "token too short", metaBody({ accessToken: "EAAshort" }), "accessToken"],
      ["meta", "token too long", metaBody({ accessToken: `EAA${"x".repeat(1022)}` }), "accessToken"],
      ["meta", "token with a space", metaBody({ accessToken: `${META_TOKEN} x` }), "accessToken"],
      ["meta", "token not a string", metaBody({ accessToken: 1234567890123 }), "accessToken"],
      ["meta", "test event code with a space", metaBody({ testEventCode: "TEST 1" }), "testEventCode"],
      ["meta", "sendDeviceIds not a boolean", metaBody({ sendDeviceIds: "yes" }), "sendDeviceIds"],
      ["meta", "an unknown field", metaBody({ pixelCode: "CBCHRKJC77U8JBE2K1EG" }), "json"],
      ["meta", "a creation without a token", { datasetId: "123456789012345" }, "accessToken"],
      ["tiktok", "pixel code lower-case", tiktokBody({ pixelCode: "cbchrkjc77u8jbe2k1eg" }), "pixelCode"],
      ["tiktok", "pixel code too short", tiktokBody({ pixelCode: "ABC123" }), "pixelCode"],
      ["tiktok", "a Meta field", tiktokBody({ datasetId: "123456789012345" }), "json"],
      ["apple-search-ads", "a token", { enabled: true, accessToken: META_TOKEN }, "json"],
      ["apple-search-ads", "enabled not a boolean", { enabled: "on" }, "enabled"],
    ];
    for (const [kind, label, body, field] of cases) {
      const response = await calls.send(owner.secret, "PUT", `${base}/${kind}`, body);
      expect(response.status, label).toBe(400);
      const error = response.error;
      expect(error.code, label).toBe("invalid_request");
      const fields = errorDetails(error)
        .map((d) => d.field)
        .join(",");
      if (field !== "json") expect(fields, label).toContain(field);
      expect(response.text, label).not.toContain(META_TOKEN);
      expect(response.text, label).not.toContain(META_TOKEN.slice(0, 20));
    }
    expect(await snapshot(stack.db, owner.orgId)).toEqual(before);
  });

  test("a body that is not JSON, or not sent as JSON → 400 invalid_json / 415, nothing stored", async () => {
    const owner = await createApiTenant(stack.db);
    const projectId = await createProjectVia(calls, owner.secret);
    const path = `/v1/projects/${projectId}/destinations/meta`;
    const before = await snapshot(stack.db, owner.orgId);
    const broken = await stack.api(path, {
      method: "PUT",
      headers: { Authorization: `Bearer ${owner.secret}`, "Content-Type": "application/json" },
      body: `{"datasetId":"123456789012345","accessToken":"${META_TOKEN}"`,
    });
    expect(broken.status).toBe(400);
    const text = await broken.text();
    expect(JSON.parse(text).error.code).toBe("invalid_json");
    expect(text).not.toContain(META_TOKEN);
    const plain = await stack.api(path, {
      method: "PUT",
      headers: { Authorization: `Bearer ${owner.secret}`, "Content-Type": "text/plain" },
      body: JSON.stringify(metaBody()),
    });
    expect(plain.status).toBe(415);
    expect(((await plain.json()) as ErrorBody).error.code).toBe("unsupported_media_type");
    expect(await snapshot(stack.db, owner.orgId)).toEqual(before);
  });

  test("unknown kind, unknown project, no destination yet → 400 / 404 with stable codes", async () => {
    const owner = await createApiTenant(stack.db);
    const projectId = await createProjectVia(calls, owner.secret);
    const unknownKind = await calls.send(
      owner.secret,
      "GET",
      `/v1/projects/${projectId}/destinations/google`,
    );
    expect(unknownKind.status).toBe(400);
    expect(unknownKind.error.code).toBe("invalid_request");
    const putUnknownKind = await calls.send(
      owner.secret,
      "PUT",
      `/v1/projects/${projectId}/destinations/google`,
      {},
    );
    expect(putUnknownKind.status).toBe(404);
    expect(putUnknownKind.error.code).toBe("not_found");
    for (const [method, path, body] of [
      ["GET", `/v1/projects/proj_doesnotexist/destinations`, undefined],
      ["GET", `/v1/projects/proj_doesnotexist/destinations/meta`, undefined],
      ["PUT", `/v1/projects/proj_doesnotexist/destinations/meta`, metaBody()],
      ["DELETE", `/v1/projects/proj_doesnotexist/destinations/meta`, undefined],
      ["GET", `/v1/projects/${projectId}/destinations/meta`, undefined],
      ["DELETE", `/v1/projects/${projectId}/destinations/meta`, undefined],
      ["POST", `/v1/projects/${projectId}/destinations/meta/test`, undefined],
    ] as const) {
      const response = await calls.send(owner.secret, method, path, body);
      expect(response.status, `${method} ${path}`).toBe(404);
      expect(response.error.code).toBe("not_found");
    }
    expect(
      await stack.db.selectFrom("destinations").select("kind").where("org_id", "=", owner.orgId).execute(),
    ).toEqual([]);
  });

  test("test-send of Apple Search Ads → 422 test_send_unsupported", async () => {
    const owner = await createApiTenant(stack.db);
    const projectId = await createProjectVia(calls, owner.secret);
    const base = `/v1/projects/${projectId}/destinations/apple-search-ads`;
    expect((await calls.send(owner.secret, "PUT", base, { enabled: true })).status).toBe(201);
    const response = await calls.send(owner.secret, "POST", `${base}/test`);
    expect(response.status).toBe(422);
    expect(response.error.code).toBe("test_send_unsupported");
  });

  test("without a keyring: a token PUT → 503 destination_keys_unavailable and nothing stored; reads and Apple still work", async () => {
    const bare = await startStack({
      consumer: "recorder",
      apiVars: { DESTINATION_KEYS: "", DESTINATION_KEY_ID: "" },
    });
    try {
      const bareCalls = new Calls(bare);
      const owner = await createApiTenant(bare.db);
      const projectId = await createProjectVia(bareCalls, owner.secret);
      const base = `/v1/projects/${projectId}/destinations`;
      const put = await bareCalls.send(owner.secret, "PUT", `${base}/meta`, metaBody());
      expect(put.status).toBe(503);
      expect(put.error.code).toBe("destination_keys_unavailable");
      expect((await bareCalls.send(owner.secret, "PUT", `${base}/apple-search-ads`, {})).status).toBe(201);
      const listed = await bareCalls.send(owner.secret, "GET", base);
      expect((listed.body as DestinationList).data.map((d) => d.kind)).toEqual(["apple-search-ads"]);
      // The log says why, without any key material or token.
      const logs = bare.logs.join("\n");
      expect(logs).toContain("destination keyring unavailable");
      expect(logs).not.toContain(META_TOKEN);
    } finally {
      await bare.dispose();
    }
  });
});
