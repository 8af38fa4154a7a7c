import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { parseKeyring } from "../../../functions/destinations/crypto";
import { loadDestinations } from "../../../functions/destinations/store";
import { ROOT } from "../../../scripts/local/bundle";
import { withTenant } from "../../../shared/db";
import { type ApiTenant, createApiTenant } from "../../support/apiTenant";
import { testDatabaseUrl } from "../../support/database";
import { type FakePlatforms, startFakePlatforms } from "../../support/fakePlatforms";
import { type Stack, startStack } from "../../support/stack";
import { Calls, createProjectVia, metaBody, tiktokBody } from "./support";

// Key rotation as the README describes it, through the real API Worker: (1) tokens written under k1;
// (2) k2 added and made current: old rows still decrypt (test-send reaches the platform with the right
// token), writes move rows to k2, the re-encrypt script moves the rest; (3) k1 removed: everything still
// works. A row that was never moved fails loudly (503), not silently.

const K1 = randomBytes(32).toString("base64");
const K2 = randomBytes(32).toString("base64");
const ringVars = (current: string, keys: Record<string, string>) => ({
  DESTINATION_KEYS: JSON.stringify(keys),
  DESTINATION_KEY_ID: current,
});

const tokens = {
  p1: "EAArotationTokenProjectOne000000001",
  p2: "ttRotationTokenProjectTwo0000000002",
  p3: "EAArotationTokenProjectThree0000003",
  p4: "EAArotationTokenLeftBehind000000004",
};
const ids = {
  p1: "800000000000001",
  p2: "ROTATIONPIXEL0000002",
  p3: "800000000000003",
  p4: "800000000000004",
};
let fakes: FakePlatforms;
beforeAll(async () => {
  fakes = await startFakePlatforms();
  fakes.meta.tokens.set(ids.p1, tokens.p1);
  fakes.tiktok.tokens.set(ids.p2, tokens.p2);
  fakes.meta.tokens.set(ids.p3, tokens.p3);
  fakes.meta.tokens.set(ids.p4, tokens.p4);
});
afterAll(() => fakes?.close());

async function withStack<T>(vars: Record<string, string>, fn: (stack: Stack, calls: Calls) => Promise<T>) {
  const stack = await startStack({ consumer: "recorder", apiVars: { ...fakes.vars, ...vars } });
  try {
    return await fn(stack, new Calls(stack));
  } finally {
    await stack.dispose();
  }
}

async function keyIds(stack: Stack, orgId: string) {
  const rows = await stack.db
    .selectFrom("destinations")
    .select(["project_id", "kind", "token_key_id"])
    .where("org_id", "=", orgId)
    .execute();
  return Object.fromEntries(rows.map((r) => [`${r.project_id}/${r.kind}`, r.token_key_id]));
}

const testSend = (calls: Calls, secret: string, projectId: string, kind: string) =>
  calls.send(secret, "POST", `/v1/projects/${projectId}/destinations/${kind}/test`);

let owner: ApiTenant;
const projects: Record<string, string> = {};

// Each step is a fresh stack of Workers with another keyring over the same database (a deploy with new
// secrets); the steps run in order and share the rows.
const STEP_TIMEOUT_MS = 150_000;

describe("destinations: key rotation", () => {
  test(
    "step 1: every token written under k1",
    async () => {
      await withStack(ringVars("k1", { k1: K1 }), async (stack, calls) => {
        owner = await createApiTenant(stack.db);
        for (const p of ["p1", "p2", "p3", "p4"] as const)
          projects[p] = await createProjectVia(calls, owner.secret, p);
        const puts = [
          [projects.p1, "meta", metaBody({ datasetId: ids.p1, accessToken: tokens.p1 })],
          [projects.p2, "tiktok", tiktokBody({ pixelCode: ids.p2, accessToken: tokens.p2 })],
          [projects.p3, "meta", metaBody({ datasetId: ids.p3, accessToken: tokens.p3 })],
          [projects.p4, "meta", metaBody({ datasetId: ids.p4, accessToken: tokens.p4 })],
        ] as const;
        for (const [projectId, kind, body] of puts) {
          expect(
            (await calls.send(owner.secret, "PUT", `/v1/projects/${projectId}/destinations/${kind}`, body))
              .status,
          ).toBe(201);
        }
        expect(Object.values(await keyIds(stack, owner.orgId))).toEqual(["k1", "k1", "k1", "k1"]);
      });
    },
    STEP_TIMEOUT_MS,
  );

  test(
    "step 2: k2 added and current: old rows still decrypt; writes and the re-encrypt script move them to k2",
    async () => {
      await withStack(ringVars("k2", { k1: K1, k2: K2 }), async (stack, calls) => {
        const sent = await testSend(calls, owner.secret, projects.p1 as string, "meta");
        expect(sent.body).toMatchObject({ outcome: "delivered", platformStatus: 200 });

        // A replace without a token re-encrypts on write; one with a new token writes under k2 anyway.
        const kept = await calls.send(owner.secret, "PUT", `/v1/projects/${projects.p1}/destinations/meta`, {
          datasetId: ids.p1,
          testEventCode: "TEST1",
        });
        expect(kept.status).toBe(200);
        expect(kept.body).toMatchObject({ tokenLast4: tokens.p1.slice(-4) });
        const newP2 = "ttRotationTokenProjectTwoRenewed0002";
        fakes.tiktok.tokens.set(ids.p2, newP2);
        tokens.p2 = newP2;
        expect(
          (
            await calls.send(
              owner.secret,
              "PUT",
              `/v1/projects/${projects.p2}/destinations/tiktok`,
              tiktokBody({
                pixelCode: ids.p2,
                accessToken: newP2,
              }),
            )
          ).status,
        ).toBe(200);
        expect(await keyIds(stack, owner.orgId)).toEqual({
          [`${projects.p1}/meta`]: "k2",
          [`${projects.p2}/tiktok`]: "k2",
          [`${projects.p3}/meta`]: "k1",
          [`${projects.p4}/meta`]: "k1",
        });

        // The documented step: the re-encrypt script, as layers_maintenance, limited to this org (the test
        // database is shared with other files). p4 is moved back out of reach first to stay behind.
        const p4Before = await stack.db
          .selectFrom("destinations")
          .select(["token_ciphertext", "token_key_id"])
          .where("project_id", "=", projects.p4 as string)
          .executeTakeFirstOrThrow();
        const { stdout } = await promisify(execFile)(
          path.join(ROOT, "node_modules", ".bin", "tsx"),
          [path.join(ROOT, "scripts", "reencrypt-destination-tokens.ts")],
          {
            cwd: ROOT,
            env: {
              ...process.env,
              DATABASE_URL: testDatabaseUrl(),
              ORG_ID: owner.orgId,
              ...ringVars("k2", { k1: K1, k2: K2 }),
            },
          },
        );
        expect(stdout).toContain(
          're-encrypted 2 destination token(s) under key "k2"; 0 left under older keys',
        );
        expect(Object.values(await keyIds(stack, owner.orgId))).toEqual(["k2", "k2", "k2", "k2"]);
        expect(stdout).not.toContain(tokens.p3);
        // Running it again changes nothing.
        const { stdout: again } = await promisify(execFile)(
          path.join(ROOT, "node_modules", ".bin", "tsx"),
          [path.join(ROOT, "scripts", "reencrypt-destination-tokens.ts")],
          {
            cwd: ROOT,
            env: {
              ...process.env,
              DATABASE_URL: testDatabaseUrl(),
              ORG_ID: owner.orgId,
              ...ringVars("k2", { k1: K1, k2: K2 }),
            },
          },
        );
        expect(again).toContain("re-encrypted 0 destination token(s)");
        // Simulate a row the rotation missed (e.g. written by an isolate still on the old keyring).
        await stack.db
          .updateTable("destinations")
          .set(p4Before)
          .where("project_id", "=", projects.p4 as string)
          .execute();
      });
    },
    STEP_TIMEOUT_MS,
  );

  test(
    "step 3: k1 removed: moved rows work, a row left behind fails loudly (503) until its token is sent again",
    async () => {
      await withStack(ringVars("k2", { k2: K2 }), async (stack, calls) => {
        for (const [p, kind] of [
          ["p1", "meta"],
          ["p2", "tiktok"],
          ["p3", "meta"],
        ] as const) {
          const sent = await testSend(calls, owner.secret, projects[p] as string, kind);
          expect(sent.body, p).toMatchObject({ outcome: "delivered" });
        }
        const ring = parseKeyring(ringVars("k2", { k2: K2 }));
        const loaded = await withTenant(stack.db, owner.orgId, (tx) =>
          loadDestinations(tx, projects.p3 as string, ring),
        );
        expect(loaded).toMatchObject([{ kind: "meta", accessToken: tokens.p3 }]);

        const missed = await testSend(calls, owner.secret, projects.p4 as string, "meta");
        expect(missed.status).toBe(503);
        expect(missed.error.code).toBe("destination_keys_unavailable");
        const keepToken = await calls.send(
          owner.secret,
          "PUT",
          `/v1/projects/${projects.p4}/destinations/meta`,
          {
            datasetId: ids.p4,
          },
        );
        expect(keepToken.status).toBe(503);
        // Reading needs no key; sending the token again repairs the row.
        expect(
          (await calls.send(owner.secret, "GET", `/v1/projects/${projects.p4}/destinations/meta`)).status,
        ).toBe(200);
        const repaired = await calls.send(
          owner.secret,
          "PUT",
          `/v1/projects/${projects.p4}/destinations/meta`,
          metaBody({ datasetId: ids.p4, accessToken: tokens.p4 }),
        );
        expect(repaired.status).toBe(200);
        expect((await testSend(calls, owner.secret, projects.p4 as string, "meta")).body).toMatchObject({
          outcome: "delivered",
        });
        const logs = stack.logs.join("\n");
        expect(logs).toContain("destination token unreadable");
        for (const token of Object.values(tokens)) expect(logs).not.toContain(token);
        for (const body of calls.bodies)
          for (const token of Object.values(tokens)) expect(body).not.toContain(token);
      });
    },
    STEP_TIMEOUT_MS,
  );
});
