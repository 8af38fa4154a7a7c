import { randomUUID } from "node:crypto";
import { type AddressInfo, createServer, type Socket } from "node:net";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { openStorageSecret } from "../../../functions/content/storageSecret";
import { parseKeyring } from "../../../functions/destinations/crypto";
import { createS3Store } from "../../../functions/storage/objectStore";
import { MAX_STORAGE_CONFIGS_PER_ORG } from "../../../functions/storageConfigs/verbs";
import { type Api, answersGiven, api, errorDetails } from "../../support/api";
import { type ApiTenant, addApiKey, createApiTenant } from "../../support/apiTenant";
import type {
  AuditList,
  Project,
  StorageCheck,
  StorageConfig,
  StorageConfigList,
} from "../../support/apiTypes";
import { rememberSecret } from "../../support/issuedSecrets";
import { type LocalS3, startLocalS3 } from "../../support/s3";
import { findInTables } from "../../support/scan";
import { type Stack, startStack, TEST_DESTINATION_KEYRING } from "../../support/stack";

// Storage configs end to end: the API Worker in workerd, real Postgres, and two S3 servers — the stack's
// own (our storage) and a second one standing for the partner's bucket, which the check writes to and
// deletes from with the stored credentials. The secret access key is sent once and never comes back: not
// in an answer, an audit row, the idempotency table, a log line, or any table but as ciphertext.

const PARTNER_BUCKET = "partner-bucket";

let stack: Stack;
let partner: LocalS3;
beforeAll(async () => {
  partner = await startLocalS3({ extraBuckets: [PARTNER_BUCKET] });
  stack = await startStack({ consumer: "recorder" });
});
afterAll(async () => {
  await stack?.dispose();
  await partner?.dispose();
});

/** A fresh secret per config, so each test's scan looks for its own. */
function newSecret(): string {
  const secret = `partnerSecret/${randomUUID().replaceAll("-", "")}Zq9X`;
  rememberSecret(secret);
  return secret;
}

// s3rver knows one access key id (S3RVER) and does not verify SigV4 signatures: any secret passes with it.
function partnerConfig(overrides: Record<string, unknown> = {}) {
  return {
    name: "Partner bucket",
    endpoint: `${partner.endpoint}/`,
    region: "us-east-1",
    bucket: PARTNER_BUCKET,
    prefix: "layers/generated",
    forcePathStyle: true,
    accessKeyId: "S3RVER",
    secretAccessKey: newSecret(),
    ...overrides,
  };
}

/** The partner's bucket, read with s3rver's own credentials (what the partner would see). */
const partnerBucket = () =>
  createS3Store({
    endpoint: partner.endpoint,
    bucket: PARTNER_BUCKET,
    region: "us-east-1",
    accessKeyId: "S3RVER",
    secretAccessKey: "S3RVER",
  });

async function org(): Promise<{ owner: ApiTenant; as: Api }> {
  const owner = await createApiTenant(stack.db);
  return { owner, as: api(stack, owner.secret) };
}

async function create(as: Api, body: Record<string, unknown>): Promise<StorageConfig> {
  const created = await as.post<unknown, StorageConfig>("/v1/storage-configs", body);
  expect(created.status, created.text).toBe(201);
  return created.body;
}

async function rowCount(orgId: string): Promise<number> {
  const rows = await stack.db
    .selectFrom("storage_configs")
    .select("id")
    .where("org_id", "=", orgId)
    .execute();
  return rows.length;
}

describe("storage configs: create, read, list, delete", () => {
  test("create answers the config with secretLast4 only; the row holds the secret sealed to this org and id", async () => {
    const { owner, as } = await org();
    const body = partnerConfig();
    const created = await create(as, body);
    expect(created).toMatchObject({
      object: "storage_config",
      name: "Partner bucket",
      // Stored as an origin (the trailing slash dropped) and the prefix as a folder.
      endpoint: partner.endpoint,
      region: "us-east-1",
      bucket: PARTNER_BUCKET,
      prefix: "layers/generated/",
      forcePathStyle: true,
      accessKeyId: "S3RVER",
      secretLast4: body.secretAccessKey.slice(-4),
      checkedAt: null,
      checkStatus: null,
    });
    expect(created.id).toMatch(/^stcfg_/);
    expect(JSON.stringify(created)).not.toContain(body.secretAccessKey);

    const row = await stack.db
      .selectFrom("storage_configs")
      .selectAll()
      .where("id", "=", created.id)
      .executeTakeFirstOrThrow();
    expect(row.org_id).toBe(owner.orgId);
    expect(row.secret_ciphertext).not.toContain(body.secretAccessKey);
    const keyring = parseKeyring(TEST_DESTINATION_KEYRING);
    const sealed = { ciphertext: row.secret_ciphertext, keyId: row.secret_key_id };
    expect(
      await openStorageSecret(keyring, sealed, { orgId: owner.orgId, storageConfigId: created.id }),
    ).toBe(body.secretAccessKey);
    // Bound to its row: the same ciphertext does not open as another config's secret.
    await expect(
      openStorageSecret(keyring, sealed, { orgId: owner.orgId, storageConfigId: "stcfg_other" }),
    ).rejects.toThrow();

    const got = await as.get<StorageConfig>(`/v1/storage-configs/${created.id}`);
    expect(got.status).toBe(200);
    expect(got.body).toEqual(created);
    expect(got.text).not.toContain(body.secretAccessKey);
  });

  test("name defaults to the bucket; prefix defaults to the bucket's root", async () => {
    const { as } = await org();
    const { name: _name, prefix: _prefix, ...body } = partnerConfig();
    const created = await create(as, body);
    expect(created.name).toBe(PARTNER_BUCKET);
    expect(created.prefix).toBe("");
  });

  test("the list pages newest first with starting_after, and shows no secret", async () => {
    const { as } = await org();
    const secrets: string[] = [];
    const ids: string[] = [];
    for (const name of ["first", "second", "third"]) {
      const body = partnerConfig({ name });
      secrets.push(body.secretAccessKey);
      ids.push((await create(as, body)).id);
    }
    const first = await as.get<StorageConfigList>("/v1/storage-configs?limit=2");
    expect(first.status).toBe(200);
    expect(first.body.data.map((c) => c.name)).toEqual(["third", "second"]);
    expect(first.body.hasMore).toBe(true);
    const rest = await as.get<StorageConfigList>(`/v1/storage-configs?limit=2&starting_after=${ids[1]}`);
    expect(rest.body.data.map((c) => c.id)).toEqual([ids[0]]);
    expect(rest.body.hasMore).toBe(false);
    for (const secret of secrets) expect(first.text + rest.text).not.toContain(secret);
  });

  test("delete removes the config and its sealed secret; both changes are audited without the secret", async () => {
    const { owner, as } = await org();
    const body = partnerConfig();
    const created = await create(as, body);
    const removed = await as.delete(`/v1/storage-configs/${created.id}`);
    expect(removed.status).toBe(204);
    expect(await rowCount(owner.orgId)).toBe(0);
    const again = await as.get(`/v1/storage-configs/${created.id}`);
    expect(again.status).toBe(404);
    expect(again.error.code).toBe("not_found");
    const deletedTwice = await as.delete(`/v1/storage-configs/${created.id}`);
    expect(deletedTwice.status).toBe(404);

    const audit = await as.get<AuditList>("/v1/audit-log");
    const actions = audit.body.data.filter((e) => e.resource.id === created.id).map((e) => e.action);
    expect(actions.sort()).toEqual(["storage_config.created", "storage_config.deleted"]);
    expect(audit.text).toContain(body.secretAccessKey.slice(-4));
    expect(audit.text).not.toContain(body.secretAccessKey);
    expect(await findInTables(stack.db, [body.secretAccessKey])).toEqual([]);
  });

  test("delete is refused while a content job writing to the config is queued or running, allowed once it finished", async () => {
    const { owner, as } = await org();
    const created = await create(as, partnerConfig());
    const project = await as.post<unknown, Project>("/v1/projects", { name: "App" });
    const projectId = project.body.id;
    const jobId = `job_${randomUUID()}`;
    await stack.db
      .insertInto("content_jobs")
      .values({
        id: jobId,
        org_id: owner.orgId,
        project_id: projectId,
        kind: "image",
        status: "running",
        storage_mode: "own",
        storage_config_id: created.id,
        async: true,
      })
      .execute();
    const refused = await as.delete(`/v1/storage-configs/${created.id}`);
    expect(refused.status, refused.text).toBe(409);
    expect(refused.error.code).toBe("storage_config_in_use");
    expect(await rowCount(owner.orgId)).toBe(1);

    await stack.db
      .updateTable("content_jobs")
      .set({ status: "succeeded", finished_at: new Date() })
      .where("id", "=", jobId)
      .execute();
    const removed = await as.delete(`/v1/storage-configs/${created.id}`);
    expect(removed.status, removed.text).toBe(204);
    // The finished job keeps the id as its record of where it wrote.
    const job = await stack.db
      .selectFrom("content_jobs")
      .select("storage_config_id")
      .where("id", "=", jobId)
      .executeTakeFirstOrThrow();
    expect(job.storage_config_id).toBe(created.id);
  });

  test("an Idempotency-Key replays the first answer, stores one config, and its stored replay holds no secret", async () => {
    const { owner, as } = await org();
    const body = partnerConfig();
    const key = `create-${randomUUID()}`;
    const first = await as.post<unknown, StorageConfig>("/v1/storage-configs", body, { idempotencyKey: key });
    const second = await as.post<unknown, StorageConfig>("/v1/storage-configs", body, {
      idempotencyKey: key,
    });
    expect(first.status).toBe(201);
    expect(second.status).toBe(201);
    expect(second.headers.get("Idempotent-Replayed")).toBe("true");
    expect(second.body).toEqual(first.body);
    expect(await rowCount(owner.orgId)).toBe(1);
    const stored = await stack.db
      .selectFrom("idempotency_keys")
      .selectAll()
      .where("org_id", "=", owner.orgId)
      .execute();
    expect(stored).toHaveLength(1);
    expect(JSON.stringify(stored)).not.toContain(body.secretAccessKey);
    // The same key with another secret is another request.
    const other = await as.post("/v1/storage-configs", partnerConfig(), { idempotencyKey: key });
    expect(other.status).toBe(422);
    expect(other.error.code).toBe("idempotency_key_reused");
  });
});

describe("storage configs: bad input is refused with a stable code and stores nothing", () => {
  const refusals: [string, Record<string, unknown>, string][] = [
    ["plain http to a public host", { endpoint: "http://storage.example.com" }, "endpoint"],
    ["a private address", { endpoint: "https://10.1.2.3" }, "endpoint"],
    ["the metadata address", { endpoint: "https://169.254.169.254" }, "endpoint"],
    ["an IPv6 unique-local address", { endpoint: "https://[fd00::1]" }, "endpoint"],
    ["an endpoint with a path", { endpoint: "https://s3.example.com/bucket" }, "endpoint"],
    ["an endpoint with credentials", { endpoint: "https://user:pw@s3.example.com" }, "endpoint"],
    ["not a URL", { endpoint: "s3.example.com" }, "endpoint"],
    ["an upper-case bucket", { bucket: "Partner" }, "bucket"],
    ["a prefix with '..'", { prefix: "a/../b" }, "prefix"],
    ["a leading '/' in the prefix", { prefix: "/a" }, "prefix"],
    ["a short secret", { secretAccessKey: "short" }, "secretAccessKey"],
    ["a secret with a space", { secretAccessKey: "has a space inside it" }, "secretAccessKey"],
    ["an unknown field", { sessionToken: "x" }, ""],
  ];
  for (const [why, override, field] of refusals) {
    test(why, async () => {
      const { owner, as } = await org();
      const answer = await as.post("/v1/storage-configs", partnerConfig(override));
      expect(answer.status, answer.text).toBe(400);
      expect(answer.error.code).toBe("invalid_request");
      if (field) expect(errorDetails(answer.error).map((d) => d.field)).toContain(field);
      expect(answer.text).not.toContain("partnerSecret/");
      expect(await rowCount(owner.orgId)).toBe(0);
    });
  }

  test(`at most ${MAX_STORAGE_CONFIGS_PER_ORG} configs per org: the next is refused (409 storage_config_limit_reached)`, async () => {
    const { owner, as } = await org();
    const body = partnerConfig();
    for (let i = 0; i < MAX_STORAGE_CONFIGS_PER_ORG; i++) await create(as, { ...body, name: `bucket ${i}` });
    const refused = await as.post("/v1/storage-configs", body);
    expect(refused.status).toBe(409);
    expect(refused.error.code).toBe("storage_config_limit_reached");
    expect(await rowCount(owner.orgId)).toBe(MAX_STORAGE_CONFIGS_PER_ORG);
    // Another org is not affected.
    const other = await org();
    await create(other.as, body);
  });

  test("a developer key reads but cannot create; read_only can do neither", async () => {
    const { owner, as } = await org();
    const created = await create(as, partnerConfig());
    const developer = api(stack, (await addApiKey(stack.db, owner.orgId, "developer")).secret);
    expect((await developer.get(`/v1/storage-configs/${created.id}`)).status).toBe(200);
    const refused = await developer.post("/v1/storage-configs", partnerConfig());
    expect(refused.status).toBe(403);
    const readOnly = api(stack, (await addApiKey(stack.db, owner.orgId, "read_only")).secret);
    expect((await readOnly.get("/v1/storage-configs")).status).toBe(403);
  });
});

describe("storage configs: check", () => {
  test("against the partner's bucket: writes a probe object under the prefix, deletes it, answers ok", async () => {
    const { as } = await org();
    const created = await create(as, partnerConfig());
    const checked = await as.post<unknown, StorageCheck>(`/v1/storage-configs/${created.id}/check`);
    expect(checked.status, checked.text).toBe(200);
    expect(checked.body).toMatchObject({
      object: "storage_config_check",
      storageConfigId: created.id,
      status: "ok",
      step: null,
      error: null,
    });
    // Written and deleted: nothing left under the prefix.
    const left = await partnerBucket().list("layers/generated/");
    expect(left.keys).toEqual([]);

    const got = await as.get<StorageConfig>(`/v1/storage-configs/${created.id}`);
    expect(got.body.checkStatus).toBe("ok");
    expect(got.body.checkedAt).toBe(checked.body.checkedAt);
    // A check is not a configuration change.
    expect(got.body.updatedAt).toBe(created.updatedAt);
    const audit = await as.get<AuditList>("/v1/audit-log");
    const entry = audit.body.data.find((e) => e.action === "storage_config.checked");
    expect(entry?.resource.id).toBe(created.id);
  });

  test("a bucket the endpoint does not have → failed, bucket_not_found at the put", async () => {
    const { as } = await org();
    const created = await create(as, partnerConfig({ bucket: "no-such-bucket" }));
    const checked = await as.post<unknown, StorageCheck>(`/v1/storage-configs/${created.id}/check`);
    expect(checked.status).toBe(200);
    expect(checked.body).toMatchObject({
      status: "failed",
      step: "put",
      error: { code: "bucket_not_found", providerCode: "NoSuchBucket", httpStatus: 404 },
    });
    const got = await as.get<StorageConfig>(`/v1/storage-configs/${created.id}`);
    expect(got.body.checkStatus).toBe("failed");
  });

  test("an access key id the endpoint does not know → failed, credentials_rejected; the secret is not echoed", async () => {
    const { as } = await org();
    const body = partnerConfig({ accessKeyId: "AKIAWRONGKEY00000000" });
    const created = await create(as, body);
    const checked = await as.post<unknown, StorageCheck>(`/v1/storage-configs/${created.id}/check`);
    expect(checked.status).toBe(200);
    expect(checked.body).toMatchObject({
      status: "failed",
      step: "put",
      error: { code: "credentials_rejected", providerCode: "InvalidAccessKeyId", httpStatus: 403 },
    });
    expect(checked.text).not.toContain(body.secretAccessKey);
  });

  test("an endpoint where nothing listens → failed, endpoint_unreachable", async () => {
    const { as } = await org();
    const created = await create(as, partnerConfig({ endpoint: "http://127.0.0.1:9" }));
    const checked = await as.post<unknown, StorageCheck>(`/v1/storage-configs/${created.id}/check`);
    expect(checked.status).toBe(200);
    expect(checked.body).toMatchObject({
      status: "failed",
      step: "put",
      error: { code: "endpoint_unreachable", providerCode: null, httpStatus: null },
    });
  });

  test("an endpoint that accepts the connection but never answers → endpoint_unreachable after the timeout", async () => {
    const sockets = new Set<Socket>();
    const silent = createServer((socket) => {
      sockets.add(socket);
    });
    await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
    const { port } = silent.address() as AddressInfo;
    try {
      const { as } = await org();
      const created = await create(as, partnerConfig({ endpoint: `http://127.0.0.1:${port}` }));
      const checked = await as.post<unknown, StorageCheck>(`/v1/storage-configs/${created.id}/check`);
      expect(checked.status).toBe(200);
      expect(checked.body).toMatchObject({
        status: "failed",
        step: "put",
        error: { code: "endpoint_unreachable" },
      });
      // The request reached the server: the timeout, not a refused connection, ended it.
      expect(sockets.size).toBeGreaterThan(0);
    } finally {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => silent.close(resolve));
    }
  });

  test("the partner's server down, then back: unreachable, then ok", async () => {
    const { as } = await org();
    const created = await create(as, partnerConfig());
    await partner.stop();
    try {
      const down = await as.post<unknown, StorageCheck>(`/v1/storage-configs/${created.id}/check`);
      expect(down.body.error?.code).toBe("endpoint_unreachable");
    } finally {
      await partner.start();
    }
    const up = await as.post<unknown, StorageCheck>(`/v1/storage-configs/${created.id}/check`);
    expect(up.body.status).toBe("ok");
  });

  test("a check with an Idempotency-Key runs once: the replay answers the first result", async () => {
    const { owner, as } = await org();
    const created = await create(as, partnerConfig());
    const key = `check-${randomUUID()}`;
    const first = await as.post<unknown, StorageCheck>(`/v1/storage-configs/${created.id}/check`, undefined, {
      idempotencyKey: key,
    });
    const second = await as.post<unknown, StorageCheck>(
      `/v1/storage-configs/${created.id}/check`,
      undefined,
      {
        idempotencyKey: key,
      },
    );
    expect(second.headers.get("Idempotent-Replayed")).toBe("true");
    expect(second.body).toEqual(first.body);
    const checks = await stack.db
      .selectFrom("audit_log")
      .select("id")
      .where("org_id", "=", owner.orgId)
      .where("action", "=", "storage_config.checked")
      .execute();
    expect(checks).toHaveLength(1);
  });

  test("no secret sent to this API appears in any answer or log line", () => {
    const answers = answersGiven(stack).join("\n");
    const logs = stack.logs.join("\n");
    expect(answers).toContain("storage_config");
    expect(answers).not.toMatch(/partnerSecret\/[0-9a-f]{32}/);
    expect(logs).not.toMatch(/partnerSecret\/[0-9a-f]{32}/);
  });
});

describe("storage configs: without the keyring", () => {
  test("create and check answer 503 destination_keys_unavailable and store nothing; reads and deletes still work", async () => {
    const bare = await startStack({
      consumer: "recorder",
      apiVars: { DESTINATION_KEYS: "", DESTINATION_KEY_ID: "" },
    });
    try {
      // A config made where the keyring is set (the same database), then reached through the bare API.
      const { owner, as } = await org();
      const existing = await create(as, partnerConfig());
      const bareApi = api(bare, owner.secret);
      const body = partnerConfig();
      const refused = await bareApi.post("/v1/storage-configs", body);
      expect(refused.status).toBe(503);
      expect(refused.error.code).toBe("destination_keys_unavailable");
      expect(await rowCount(owner.orgId)).toBe(1);
      const check = await bareApi.post(`/v1/storage-configs/${existing.id}/check`);
      expect(check.status).toBe(503);
      expect(check.error.code).toBe("destination_keys_unavailable");
      expect(
        (await bareApi.get<StorageConfig>(`/v1/storage-configs/${existing.id}`)).body.checkStatus,
      ).toBeNull();
      expect((await bareApi.delete(`/v1/storage-configs/${existing.id}`)).status).toBe(204);
      expect(bare.logs.join("\n")).not.toContain(body.secretAccessKey);
    } finally {
      await bare.dispose();
    }
  });
});
