import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { createProject } from "../../../functions/projects/store";
import { withTenant } from "../../../shared/db";
import { api, type Method } from "../../support/api";
import { type ApiTenant, addApiKey, createApiTenant } from "../../support/apiTenant";
import type { CreatedApiKey, CreatedSdkKey } from "../../support/apiTypes";
import { findInTables } from "../../support/scan";
import { type Stack, startStack } from "../../support/stack";

// Idempotency-Key as an attacker tries it: another key of the same org replaying an answer it may not have
// (a new key's secret), a project-restricted key replaying an org-wide answer, a changed query string
// passing as the same request, and the stored envelopes holding secrets. Real Worker, real Postgres.

let stack: Stack;
beforeAll(async () => {
  stack = await startStack({ consumer: "recorder" });
});
afterAll(() => stack?.dispose());

/** What key-creating routes answer: an API key or an SDK key, with its secret (null on a replay). */
type Created = CreatedApiKey | CreatedSdkKey;

function send<Res = Created>(t: ApiTenant, method: Method, path: string, key?: string, body?: unknown) {
  return api(stack, t.secret).send<Res>(method, path, body, key ? { idempotencyKey: key } : {});
}

const issued: string[] = [];
function remember(body: Created): Created {
  if (typeof body.secret === "string") issued.push(body.secret);
  return body;
}

describe("Idempotency-Key is scoped to the API key that sent it", () => {
  test("another key of the org never gets the first key's answer (nor its secret): it is judged on its own", async () => {
    const owner = await createApiTenant(stack.db);
    const admin = await addApiKey(stack.db, owner.orgId, "admin");
    const body = { name: "Second owner", role: "owner" };
    const first = await send(owner, "POST", "/v1/api-keys", "mint-owner", body);
    expect(first.status).toBe(201);
    const created = remember(first.body);
    expect(created.secret).toMatch(/^lp_live_/);

    // The admin sends the very same request with the very same key: its own authorization applies (an admin
    // may not create an owner key), and nothing of the owner's answer reaches it.
    const stolen = await send(admin, "POST", "/v1/api-keys", "mint-owner", body);
    expect(stolen.status).toBe(403);
    expect(stolen.headers.get("Idempotent-Replayed")).toBeNull();
    const text = stolen.text;
    expect(text).not.toContain(created.secret as string);
    expect(text).not.toContain(created.id as string);

    // An admin creating a developer key under the same Idempotency-Key gets its own new key, not a replay.
    const own = await send(admin, "POST", "/v1/api-keys", "mint-owner", { name: "Mine", role: "developer" });
    expect(own.status).toBe(201);
    expect(own.headers.get("Idempotent-Replayed")).toBeNull();
    const ownKey = remember(own.body);
    expect(ownKey.id).not.toBe(created.id);
    expect(ownKey.secret).toMatch(/^lp_live_/);
  });

  test("a project-restricted key cannot replay an org-wide answer; authorization runs before the replay", async () => {
    const owner = await createApiTenant(stack.db);
    const project = await withTenant(stack.db, owner.orgId, (tx) =>
      createProject(tx, owner.orgId, { name: "Own" }),
    );
    const restricted = await addApiKey(stack.db, owner.orgId, "developer", project.id);
    const first = await send(owner, "POST", "/v1/projects", "new-project", { name: "Org-wide" });
    expect(first.status).toBe(201);
    const again = await send(restricted, "POST", "/v1/projects", "new-project", { name: "Org-wide" });
    expect(again.status).toBe(403);
    expect(again.headers.get("Idempotent-Replayed")).toBeNull();

    // The restricted key's own claim on a key, then a replay attempt on another project: 404 before replay.
    const other = await withTenant(stack.db, owner.orgId, (tx) =>
      createProject(tx, owner.orgId, { name: "Other" }),
    );
    const ownKey = await send(restricted, "POST", `/v1/projects/${project.id}/sdk-keys`, "sdk-1");
    expect(ownKey.status).toBe(201);
    remember(ownKey.body);
    const elsewhere = await send(restricted, "POST", `/v1/projects/${other.id}/sdk-keys`, "sdk-1");
    expect(elsewhere.status).toBe(404);
    expect(elsewhere.headers.get("Idempotent-Replayed")).toBeNull();
    const keys = await stack.db
      .selectFrom("sdk_keys")
      .select("id")
      .where("project_id", "=", other.id)
      .execute();
    expect(keys).toEqual([]);
  });
});

describe("the same request means the same method, path, query string and body", () => {
  test("?suppress=false then ?suppress=true with one key → 422, and no second request is opened", async () => {
    const owner = await createApiTenant(stack.db);
    const project = await withTenant(stack.db, owner.orgId, (tx) =>
      createProject(tx, owner.orgId, { name: "DSAR" }),
    );
    const path = `/v1/projects/${project.id}/events/users/user-q`;
    const first = await send(owner, "DELETE", `${path}?suppress=false`, "erase-q");
    expect(first.status).toBe(202);
    const second = await send(owner, "DELETE", `${path}?suppress=true`, "erase-q");
    expect(second.status).toBe(422);
    expect(second.error.code).toBe("idempotency_key_reused");
    const suppressions = await stack.db
      .selectFrom("suppressions")
      .select("identifier_type")
      .where("project_id", "=", project.id)
      .execute();
    expect(suppressions).toEqual([]);
    // The same query string again is a replay.
    const replay = await send(owner, "DELETE", `${path}?suppress=false`, "erase-q");
    expect(replay.status).toBe(202);
    expect(replay.headers.get("Idempotent-Replayed")).toBe("true");
  });
});

describe("no secret is ever stored", () => {
  test("replays of key creation and rotation return the resource with secret: null; no table holds a secret", async () => {
    const owner = await createApiTenant(stack.db);
    issued.push(owner.secret);
    const project = await withTenant(stack.db, owner.orgId, (tx) =>
      createProject(tx, owner.orgId, { name: "Secrets" }),
    );
    const calls: [string, string, unknown][] = [
      ["/v1/api-keys", "create-dev", { name: "CI", role: "developer" }],
      [`/v1/projects/${project.id}/sdk-keys`, "create-sdk", undefined],
    ];
    for (const [path, key, body] of calls) {
      const first = await send(owner, "POST", path, key, body);
      expect(first.status).toBe(201);
      const firstBody = remember(first.body);
      expect(typeof firstBody.secret).toBe("string");
      const replay = await send(owner, "POST", path, key, body);
      expect(replay.status).toBe(201);
      expect(replay.headers.get("Idempotent-Replayed")).toBe("true");
      const replayBody = replay.body;
      // The resource, exactly as first answered, without the secret.
      expect(replayBody).toEqual({ ...firstBody, secret: null });
    }

    const admin = await addApiKey(stack.db, owner.orgId, "admin");
    issued.push(admin.secret);
    const rotated = await send(owner, "POST", `/v1/api-keys/${admin.keyId}/rotate`, "rotate-1", {
      gracePeriodSeconds: 60,
    });
    expect(rotated.status).toBe(201);
    const rotatedBody = remember(rotated.body);
    const rotatedAgain = await send(owner, "POST", `/v1/api-keys/${admin.keyId}/rotate`, "rotate-1", {
      gracePeriodSeconds: 60,
    });
    expect(rotatedAgain.body).toEqual({ ...rotatedBody, secret: null });

    // A destination token sent with an Idempotency-Key: never in a stored envelope either.
    const token = `EAAidem${crypto.randomUUID().replaceAll("-", "")}`;
    issued.push(token);
    const put = await send(owner, "PUT", `/v1/projects/${project.id}/destinations/meta`, "dest-1", {
      enabled: true,
      datasetId: "123456789",
      accessToken: token,
      sendDeviceIds: false,
    });
    expect(put.status).toBe(201);

    const stored = await stack.db
      .selectFrom("idempotency_keys")
      .select(["idempotency_key", "response_body"])
      .where("org_id", "=", owner.orgId)
      .execute();
    expect(stored.length).toBe(4);
    expect(issued.length).toBeGreaterThanOrEqual(7);
    expect(await findInTables(stack.db, issued)).toEqual([]);
  });
});
