import { execFile } from "node:child_process";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, expect, test } from "vitest";
import { signingSecrets } from "../../../functions/webhooks/secrets";
import { ROOT } from "../../../scripts/local/bundle";
import { api } from "../../support/api";
import { createApiTenant } from "../../support/apiTenant";
import { testDatabaseUrl } from "../../support/database";
import { rememberSecret } from "../../support/issuedSecrets";
import { type Stack, startStack } from "../../support/stack";

// Signing secrets share the destination-token keyring, so its rotation must carry them too: the documented
// re-encrypt script moves every current and previous secret to the new key (and says when any is left
// behind), after which the old key can leave the ring and every secret still decrypts to what the partner
// was given.

const K1 = Buffer.alloc(32, 1).toString("base64");
const K2 = Buffer.alloc(32, 2).toString("base64");
const ring = (current: string, keys: Record<string, string>) => ({
  DESTINATION_KEYS: JSON.stringify(keys),
  DESTINATION_KEY_ID: current,
});

let stack: Stack;
beforeAll(async () => {
  stack = await startStack({
    consumer: "recorder",
    apiVars: { WEBHOOK_ALLOW_LOCAL_HTTP: "true", ...ring("k1", { k1: K1 }) },
  });
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

test("the keyring rotation script moves current and previous signing secrets to the new key; the old key can go", async () => {
  const owner = await createApiTenant(stack.db);
  const as = api(stack, owner.secret);
  const created = await as.post<unknown, { id: string; secret: string }>("/v1/webhook-endpoints", {
    url: "http://127.0.0.1:9/keys",
  });
  expect(created.status).toBe(201);
  rememberSecret(created.body.secret);
  const rotated = await as.post<unknown, { secret: string }>(
    `/v1/webhook-endpoints/${created.body.id}/rotate-secret`,
    { gracePeriodSeconds: 3600 },
  );
  rememberSecret(rotated.body.secret);
  const row = () =>
    stack.db
      .selectFrom("webhook_endpoints")
      .selectAll()
      .where("id", "=", created.body.id)
      .executeTakeFirstOrThrow();
  expect(await row()).toMatchObject({ secret_key_id: "k1", previous_secret_key_id: "k1" });

  const stdout = await reencrypt(owner.orgId);
  expect(stdout).toContain("re-encrypted 1 webhook endpoint(s)' signing secrets; 0 left under older keys");
  expect(stdout).not.toContain(rotated.body.secret.slice(6));
  const moved = await row();
  expect(moved).toMatchObject({ secret_key_id: "k2", previous_secret_key_id: "k2" });
  // With k1 gone from the ring, both secrets still read back as the ones the partner holds.
  const secrets = await signingSecrets({ currentKeyId: "k2", keys: { k2: K2 } }, moved, new Date());
  expect(secrets).toEqual([rotated.body.secret, created.body.secret]);

  expect(await reencrypt(owner.orgId)).toContain("re-encrypted 0 webhook endpoint(s)' signing secrets");
});
