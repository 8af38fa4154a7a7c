import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { parseKeyring } from "../../../functions/destinations/crypto";
import { loadDestinations, setDestinationStatus } from "../../../functions/destinations/store";
import { withTenant } from "../../../shared/db";
import { createApiTenant } from "../../support/apiTenant";
import type { Destination, DestinationList } from "../../support/apiTypes";
import { type Stack, startStack, TEST_DESTINATION_KEYRING } from "../../support/stack";
import { Calls, createProjectVia, META_TOKEN, metaBody, TIKTOK_TOKEN, tiktokBody } from "./support";

// Destinations through the partner API, the paths a partner takes: create, read, list, replace (with and
// without a new token), switch off, delete; what is stored (ciphertext only) and what the relay reads back
// (the decrypted token), and the audit trail of every change.

let stack: Stack;
let calls: Calls;
beforeAll(async () => {
  stack = await startStack({ consumer: "recorder" });
  calls = new Calls(stack);
});
afterAll(() => stack?.dispose());

const keyring = parseKeyring(TEST_DESTINATION_KEYRING);

describe("destinations: happy paths", () => {
  test("Meta: PUT creates (201), GET and the list show it with tokenLast4 only, the relay decrypts the token", async () => {
    const owner = await createApiTenant(stack.db);
    const projectId = await createProjectVia(calls, owner.secret);
    const path = `/v1/projects/${projectId}/destinations/meta`;

    const created = await calls.send<Destination>(
      owner.secret,
      "PUT",
      path,
      metaBody({ testEventCode: "TEST4242" }),
    );
    expect(created.status).toBe(201);
    const body = created.body;
    expect(body).toEqual({
      object: "destination",
      projectId,
      kind: "meta",
      enabled: true,
      status: "active",
      failingSince: null,
      tokenLast4: META_TOKEN.slice(-4),
      datasetId: "123456789012345",
      testEventCode: "TEST4242",
      sendDeviceIds: false,
      createdAt: expect.any(String),
      updatedAt: expect.any(String),
    });
    expect(created.text).not.toContain(META_TOKEN);

    const got = await calls.send(owner.secret, "GET", path);
    expect(got.status).toBe(200);
    expect(got.body).toEqual(body);
    const listed = await calls.send(owner.secret, "GET", `/v1/projects/${projectId}/destinations`);
    expect(listed.body).toEqual({ object: "list", data: [body], hasMore: false, nextCursor: null });

    // At rest: ciphertext under the current key, never the token.
    const row = await stack.db
      .selectFrom("destinations")
      .selectAll()
      .where("project_id", "=", projectId)
      .executeTakeFirstOrThrow();
    expect(row).toMatchObject({
      org_id: owner.orgId,
      kind: "meta",
      token_key_id: "test-k1",
      token_last4: "WXYZ",
    });
    expect(row.token_ciphertext).not.toContain(META_TOKEN);
    expect(JSON.stringify(row)).not.toContain(META_TOKEN.slice(0, 12));
    expect(row.config).toEqual({
      datasetId: "123456789012345",
      testEventCode: "TEST4242",
      sendDeviceIds: false,
    });

    // What the relay gets: the decrypted token, in memory.
    const loaded = await withTenant(stack.db, owner.orgId, (tx) => loadDestinations(tx, projectId, keyring));
    expect(loaded).toEqual([
      {
        kind: "meta",
        orgId: owner.orgId,
        projectId,
        enabled: true,
        status: "active",
        datasetId: "123456789012345",
        accessToken: META_TOKEN,
        testEventCode: "TEST4242",
        sendDeviceIds: false,
      },
    ]);
  });

  test("replace without a token keeps the stored one; with a new one swaps it; every change is audited without secrets", async () => {
    const owner = await createApiTenant(stack.db);
    const projectId = await createProjectVia(calls, owner.secret);
    const path = `/v1/projects/${projectId}/destinations/meta`;
    expect((await calls.send(owner.secret, "PUT", path, metaBody())).status).toBe(201);

    const kept = await calls.send(owner.secret, "PUT", path, {
      datasetId: "987654321098765",
      enabled: false,
      sendDeviceIds: true,
    });
    expect(kept.status).toBe(200);
    expect(kept.body).toMatchObject({
      enabled: false,
      datasetId: "987654321098765",
      sendDeviceIds: true,
      testEventCode: null,
      tokenLast4: "WXYZ",
    });
    let [loaded] = await withTenant(stack.db, owner.orgId, (tx) => loadDestinations(tx, projectId, keyring));
    expect(loaded).toMatchObject({ accessToken: META_TOKEN, enabled: false, datasetId: "987654321098765" });

    const newToken = "EAAGsecondProbeToken0123456789abcdefQRST";
    const swapped = await calls.send(
      owner.secret,
      "PUT",
      path,
      metaBody({ accessToken: newToken, enabled: true }),
    );
    expect(swapped.status).toBe(200);
    expect(swapped.body).toMatchObject({ tokenLast4: "QRST", enabled: true, sendDeviceIds: false });
    [loaded] = await withTenant(stack.db, owner.orgId, (tx) => loadDestinations(tx, projectId, keyring));
    expect(loaded).toMatchObject({ accessToken: newToken });

    const audit = await stack.db
      .selectFrom("audit_log")
      .select(["action", "resource_type", "resource_id", "actor_id", "changes"])
      .where("org_id", "=", owner.orgId)
      .where("resource_type", "=", "destination")
      .orderBy("occurred_at")
      .orderBy("id")
      .execute();
    expect(audit.map((a) => a.action)).toEqual([
      "destination.created",
      "destination.updated",
      "destination.updated",
    ]);
    expect(audit.every((a) => a.resource_id === `${projectId}/meta` && a.actor_id === owner.keyId)).toBe(
      true,
    );
    expect(audit[0]?.changes).toMatchObject({ after: { datasetId: "123456789012345", tokenLast4: "WXYZ" } });
    // The second change kept the token: the diff shows the settings, not the token.
    expect(audit[1]?.changes).toMatchObject({
      before: { enabled: true, datasetId: "123456789012345", sendDeviceIds: false },
      after: { enabled: false, datasetId: "987654321098765", sendDeviceIds: true },
    });
    expect(audit[1]?.changes).not.toHaveProperty("after.tokenReplaced");
    // The third one replaced it: visible as such, with the new last four characters only.
    expect(audit[2]?.changes).toMatchObject({ after: { tokenLast4: "QRST", tokenReplaced: true } });
    const auditText = JSON.stringify(audit);
    for (const secret of [META_TOKEN, newToken]) expect(auditText).not.toContain(secret);
    const rowCipher = await stack.db
      .selectFrom("destinations")
      .select("token_ciphertext")
      .where("project_id", "=", projectId)
      .executeTakeFirstOrThrow();
    expect(auditText).not.toContain(rowCipher.token_ciphertext);
    expect(auditText).not.toContain("ciphertext");
  });

  test("TikTok and Apple Search Ads alongside Meta; DELETE answers 204, then GET 404 and the row and token are gone", async () => {
    const owner = await createApiTenant(stack.db);
    const projectId = await createProjectVia(calls, owner.secret);
    const base = `/v1/projects/${projectId}/destinations`;
    expect((await calls.send(owner.secret, "PUT", `${base}/meta`, metaBody())).status).toBe(201);
    const tiktok = await calls.send(
      owner.secret,
      "PUT",
      `${base}/tiktok`,
      tiktokBody({ testEventCode: "TEST777" }),
    );
    expect(tiktok.status).toBe(201);
    expect(tiktok.body).toMatchObject({
      kind: "tiktok",
      pixelCode: "CBCHRKJC77U8JBE2K1EG",
      testEventCode: "TEST777",
      tokenLast4: TIKTOK_TOKEN.slice(-4),
    });
    expect(tiktok.body).not.toHaveProperty("datasetId");
    const apple = await calls.send(owner.secret, "PUT", `${base}/apple-search-ads`, { enabled: true });
    expect(apple.status).toBe(201);
    expect(apple.body).toMatchObject({ kind: "apple-search-ads", enabled: true, tokenLast4: null });

    const listed = await calls.send<DestinationList>(owner.secret, "GET", base);
    expect(listed.body.data.map((d) => d.kind)).toEqual(["apple-search-ads", "meta", "tiktok"]);
    const loaded = await withTenant(stack.db, owner.orgId, (tx) => loadDestinations(tx, projectId, keyring));
    expect(loaded.map((d) => [d.kind, "accessToken" in d ? d.accessToken : null])).toEqual([
      ["apple-search-ads", null],
      ["meta", META_TOKEN],
      ["tiktok", TIKTOK_TOKEN],
    ]);

    const deleted = await calls.send(owner.secret, "DELETE", `${base}/tiktok`);
    expect(deleted.status).toBe(204);
    expect(deleted.text).toBe("");
    const gone = await calls.send(owner.secret, "GET", `${base}/tiktok`);
    expect(gone.status).toBe(404);
    expect(gone.error.code).toBe("not_found");
    const again = await calls.send(owner.secret, "DELETE", `${base}/tiktok`);
    expect(again.status).toBe(404);
    const kinds = await stack.db
      .selectFrom("destinations")
      .select("kind")
      .where("project_id", "=", projectId)
      .orderBy("kind")
      .execute();
    expect(kinds.map((k) => k.kind)).toEqual(["apple-search-ads", "meta"]);
    const deletedAudit = await stack.db
      .selectFrom("audit_log")
      .select(["changes"])
      .where("org_id", "=", owner.orgId)
      .where("action", "=", "destination.deleted")
      .executeTakeFirstOrThrow();
    expect(deletedAudit.changes).toMatchObject({
      before: { kind: "tiktok", tokenLast4: TIKTOK_TOKEN.slice(-4) },
    });
    expect(JSON.stringify(deletedAudit)).not.toContain(TIKTOK_TOKEN);
  });

  test("Idempotency-Key on PUT: the same request replays the first answer, no second audit row", async () => {
    const owner = await createApiTenant(stack.db);
    const projectId = await createProjectVia(calls, owner.secret);
    const path = `/v1/projects/${projectId}/destinations/meta`;
    const first = await calls.send(owner.secret, "PUT", path, metaBody(), {
      "Idempotency-Key": "dest-put-1",
    });
    const second = await calls.send(owner.secret, "PUT", path, metaBody(), {
      "Idempotency-Key": "dest-put-1",
    });
    expect(first.status).toBe(201);
    expect(second.status).toBe(201);
    expect(second.headers.get("Idempotent-Replayed")).toBe("true");
    expect(second.text).toBe(first.text);
    const audits = await stack.db
      .selectFrom("audit_log")
      .select("action")
      .where("org_id", "=", owner.orgId)
      .where("resource_type", "=", "destination")
      .execute();
    expect(audits).toHaveLength(1);
    // The stored replay holds the answer, which never has the token.
    const stored = await stack.db
      .selectFrom("idempotency_keys")
      .select("response_body")
      .where("org_id", "=", owner.orgId)
      .executeTakeFirstOrThrow();
    expect(JSON.stringify(stored.response_body)).not.toContain(META_TOKEN);
  });

  test("the relay's status shows in GET; a failure keeps its first time; a success clears it; PUT keeps the status", async () => {
    const owner = await createApiTenant(stack.db);
    const projectId = await createProjectVia(calls, owner.secret);
    const path = `/v1/projects/${projectId}/destinations/tiktok`;
    expect((await calls.send(owner.secret, "PUT", path, tiktokBody())).status).toBe(201);
    const first = new Date("2026-11-20T10:00:00.000Z");
    await withTenant(stack.db, owner.orgId, (tx) =>
      setDestinationStatus(tx, projectId, "tiktok", "failing", first),
    );
    await withTenant(stack.db, owner.orgId, (tx) =>
      setDestinationStatus(tx, projectId, "tiktok", "failing", new Date("2026-11-21T10:00:00.000Z")),
    );
    expect((await calls.send(owner.secret, "GET", path)).body).toMatchObject({
      status: "failing",
      failingSince: first.toISOString(),
    });
    // Fixing the token does not claim the destination works: only the next delivery can.
    const put = await calls.send(
      owner.secret,
      "PUT",
      path,
      tiktokBody({ accessToken: `${TIKTOK_TOKEN}NEW1` }),
    );
    expect(put.body).toMatchObject({
      status: "failing",
      failingSince: first.toISOString(),
      tokenLast4: "NEW1",
    });
    await withTenant(stack.db, owner.orgId, (tx) =>
      setDestinationStatus(tx, projectId, "tiktok", "active", new Date("2026-11-22T10:00:00.000Z")),
    );
    expect((await calls.send(owner.secret, "GET", path)).body).toMatchObject({
      status: "active",
      failingSince: null,
    });
  });

  test("no answer in this file carried a token", () => {
    const all = calls.bodies.join("\n");
    expect(calls.bodies.length).toBeGreaterThan(20);
    for (const secret of [META_TOKEN, TIKTOK_TOKEN, "EAAGsecondProbeToken"])
      expect(all).not.toContain(secret);
  });
});
