import { execFile } from "node:child_process";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, expect, test } from "vitest";
import { openStorageSecret } from "../../../functions/content/storageSecret";
import { ROOT } from "../../../scripts/local/bundle";
import { api } from "../../support/api";
import { createApiTenant } from "../../support/apiTenant";
import { testDatabaseUrl } from "../../support/database";
import { rememberSecret } from "../../support/issuedSecrets";
import { type Stack, startStack } from "../../support/stack";

// Storage-config secrets share the destination-token keyring, so its rotation must carry them too: the
// documented re-encrypt script moves each to the new key (and says when any is left behind), after which
// the old key can leave the ring and the secret still opens to what the partner sent.

const K1 = Buffer.alloc(32, 1).toString("base64");
const K2 = Buffer.alloc(32, 2).toString("base64");
const ring = (current: string, keys: Record<string, string>) => ({
  DESTINATION_KEYS: JSON.stringify(keys),
  DESTINATION_KEY_ID: current,
});

let stack: Stack;
beforeAll(async () => {
  stack = await startStack({ consumer: "recorder", apiVars: ring("k1", { k1: K1 }) });
});
afterAll(() => stack?.dispose());

async function reencrypt(orgId: string): Promise<string> {
  const { stdout } = await promisify(execFile)(
    path.join(ROOT, "node_modules", ".bin", "tsx"),
    [path.join(ROOT, "scripts", "reencrypt-destination-tokens.ts")],
    {
      cwd: ROOT,
      env: {
        ...process.env,
        DATABASE_URL: testDatabaseUrl(),
        ORG_ID: orgId,
        ...ring("k2", { k1: K1, k2: K2 }),
      },
    },
  );
  return stdout;
}

test("the keyring rotation script moves storage-config secrets to the new key; the old key can go", async () => {
  const owner = await createApiTenant(stack.db);
  const as = api(stack, owner.secret);
  const secret = `rotationSecret/${crypto.randomUUID()}`;
  rememberSecret(secret);
  const created = await as.post<unknown, { id: string }>("/v1/storage-configs", {
    endpoint: "http://127.0.0.1:9",
    region: "us-east-1",
    bucket: "rotation-bucket",
    forcePathStyle: true,
    accessKeyId: "ROTATIONKEYID",
    secretAccessKey: secret,
  });
  expect(created.status, created.text).toBe(201);
  const row = () =>
    stack.db
      .selectFrom("storage_configs")
      .selectAll()
      .where("id", "=", created.body.id)
      .executeTakeFirstOrThrow();
  expect(await row()).toMatchObject({ secret_key_id: "k1" });

  const stdout = await reencrypt(owner.orgId);
  expect(stdout).toContain("re-encrypted 1 storage config secret(s); 0 left under older keys");
  expect(stdout).not.toContain(secret);
  const moved = await row();
  expect(moved.secret_key_id).toBe("k2");
  // With k1 gone from the ring, the secret still opens, bound to its org and config.
  const opened = await openStorageSecret(
    { currentKeyId: "k2", keys: { k2: K2 } },
    { ciphertext: moved.secret_ciphertext, keyId: moved.secret_key_id },
    { orgId: owner.orgId, storageConfigId: created.body.id },
  );
  expect(opened).toBe(secret);

  expect(await reencrypt(owner.orgId)).toContain("re-encrypted 0 storage config secret(s)");
});
