import { sql } from "kysely";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { addApiKey, bearer, createApiTenant } from "../../support/apiTenant";
import { type Stack, startStack } from "../../support/stack";
import {
  Calls,
  createProjectVia,
  type ErrorJson,
  META_TOKEN,
  metaBody,
  snapshot,
  TIKTOK_TOKEN,
  tiktokBody,
} from "./support";

// Who may touch destinations: no key / bad key / revoked key → 401; a role too low → 403; another org's
// or another project's destination (for a restricted key) → 404 as if it did not exist. Every refusal
// leaves rows and audit as they were. Last, the token appears in no answer, no log line, and no table
// but as ciphertext.

let stack: Stack;
let calls: Calls;
beforeAll(async () => {
  stack = await startStack({ consumer: "recorder" });
  calls = new Calls(stack);
});
afterAll(() => stack?.dispose());

function destinationCalls(projectId: string) {
  const base = `/v1/projects/${projectId}/destinations`;
  return [
    { method: "GET", path: base, write: false },
    { method: "GET", path: `${base}/meta`, write: false },
    { method: "PUT", path: `${base}/meta`, body: metaBody({ datasetId: "111111111111111" }), write: true },
    { method: "PUT", path: `${base}/tiktok`, body: tiktokBody(), write: true },
    { method: "PUT", path: `${base}/apple-search-ads`, body: { enabled: false }, write: true },
    { method: "DELETE", path: `${base}/meta`, write: true },
    { method: "POST", path: `${base}/meta/test`, write: true },
  ];
}

async function orgWithMeta() {
  const owner = await createApiTenant(stack.db);
  const projectId = await createProjectVia(calls, owner.secret);
  const put = await calls.send(
    owner.secret,
    "PUT",
    `/v1/projects/${projectId}/destinations/meta`,
    metaBody(),
  );
  expect(put.status).toBe(201);
  return { owner, projectId };
}

describe("destinations: security", () => {
  test("no key, a malformed, unknown or revoked key → 401 on every call; nothing changes", async () => {
    const { owner, projectId } = await orgWithMeta();
    const revoked = await addApiKey(stack.db, owner.orgId, "owner");
    expect((await calls.send(owner.secret, "POST", `/v1/api-keys/${revoked.keyId}/revoke`)).status).toBe(200);
    const before = await snapshot(stack.db, owner.orgId);
    const json = { "Content-Type": "application/json" };
    const attempts: [string, Record<string, string>][] = [
      ["no key", json],
      ["no Bearer scheme", { ...json, Authorization: owner.secret }],
      ["an unknown key", bearer(`lp_live_${"C".repeat(32)}`)],
      ["a revoked key", bearer(revoked.secret)],
    ];
    for (const [label, headers] of attempts) {
      for (const call of destinationCalls(projectId)) {
        const response = await stack.api(call.path, {
          method: call.method,
          headers,
          ...(call.body ? { body: JSON.stringify(call.body) } : {}),
        });
        expect(response.status, `${label}: ${call.method} ${call.path}`).toBe(401);
        expect(((await response.json()) as ErrorJson).error.code).toBe("unauthorized");
      }
    }
    expect(await snapshot(stack.db, owner.orgId)).toEqual(before);
  });

  test("developer reads but cannot change or test-send (403); read_only cannot even read (403); nothing changes", async () => {
    const { owner, projectId } = await orgWithMeta();
    const developer = await addApiKey(stack.db, owner.orgId, "developer");
    const readOnly = await addApiKey(stack.db, owner.orgId, "read_only");
    const before = await snapshot(stack.db, owner.orgId);
    for (const call of destinationCalls(projectId)) {
      const dev = await calls.send(developer.secret, call.method, call.path, call.body);
      expect(dev.status, `developer ${call.method} ${call.path}`).toBe(call.write ? 403 : 200);
      const ro = await calls.send(readOnly.secret, call.method, call.path, call.body);
      expect(ro.status, `read_only ${call.method} ${call.path}`).toBe(403);
      expect(ro.json<ErrorJson>().error.code).toBe("forbidden");
    }
    expect(await snapshot(stack.db, owner.orgId)).toEqual(before);
    // An admin may change them.
    const admin = await addApiKey(stack.db, owner.orgId, "admin");
    const put = await calls.send(
      admin.secret,
      "PUT",
      `/v1/projects/${projectId}/destinations/tiktok`,
      tiktokBody(),
    );
    expect(put.status).toBe(201);
  });

  test("another org's project → 404 on every call, its destination untouched; its list shows nothing of it", async () => {
    const victim = await orgWithMeta();
    const attacker = await createApiTenant(stack.db);
    await createProjectVia(calls, attacker.secret);
    const before = await snapshot(stack.db, victim.owner.orgId);
    for (const call of destinationCalls(victim.projectId)) {
      const response = await calls.send(attacker.secret, call.method, call.path, call.body);
      expect(response.status, `${call.method} ${call.path}`).toBe(404);
      expect(response.json<ErrorJson>().error.code).toBe("not_found");
    }
    expect(await snapshot(stack.db, victim.owner.orgId)).toEqual(before);
    const attackerRows = await stack.db
      .selectFrom("destinations")
      .select("kind")
      .where("org_id", "=", attacker.orgId)
      .execute();
    expect(attackerRows).toEqual([]);
  });

  test("a key restricted to one project: 404 on the other project's destinations, its own work", async () => {
    const owner = await createApiTenant(stack.db);
    const mine = await createProjectVia(calls, owner.secret, "Mine");
    const other = await createProjectVia(calls, owner.secret, "Other");
    expect(
      (await calls.send(owner.secret, "PUT", `/v1/projects/${other}/destinations/meta`, metaBody())).status,
    ).toBe(201);
    const restricted = await addApiKey(stack.db, owner.orgId, "admin", mine);
    const before = await snapshot(stack.db, owner.orgId);
    for (const call of destinationCalls(other)) {
      const response = await calls.send(restricted.secret, call.method, call.path, call.body);
      expect(response.status, `${call.method} ${call.path}`).toBe(404);
    }
    expect(await snapshot(stack.db, owner.orgId)).toEqual(before);
    const own = await calls.send(
      restricted.secret,
      "PUT",
      `/v1/projects/${mine}/destinations/meta`,
      metaBody(),
    );
    expect(own.status).toBe(201);
  });

  test("RLS: the app role in org A's transaction sees no destination of org B", async () => {
    const a = await orgWithMeta();
    const b = await orgWithMeta();
    const seen = await stack.db.transaction().execute(async (tx) => {
      await sql`select set_config('app.org_id', ${a.owner.orgId}, true), set_config('role', 'layers_api', true)`.execute(
        tx,
      );
      return tx.selectFrom("destinations").select(["org_id", "project_id"]).execute();
    });
    expect(seen).toEqual([{ org_id: a.owner.orgId, project_id: a.projectId }]);
    expect(seen.map((r) => r.org_id)).not.toContain(b.owner.orgId);
  });

  test("the tokens appear in no answer, no log line, and no table (only as ciphertext)", async () => {
    // Every token this file used went through PUT; add a TikTok one and a rejected one for good measure.
    const { owner, projectId } = await orgWithMeta();
    await calls.send(owner.secret, "PUT", `/v1/projects/${projectId}/destinations/tiktok`, tiktokBody());
    await calls.send(
      owner.secret,
      "PUT",
      `/v1/projects/${projectId}/destinations/meta`,
      metaBody({ datasetId: "x" }),
    );
    const needles = [META_TOKEN, TIKTOK_TOKEN, META_TOKEN.slice(0, 16), TIKTOK_TOKEN.slice(0, 16)];

    const answers = calls.bodies.join("\n");
    expect(calls.bodies.length).toBeGreaterThan(40);
    for (const needle of needles) expect(answers).not.toContain(needle);

    // Whatever the Workers logged (the API logs little on success; the keyring and relay paths log more).
    const logs = stack.logs.join("\n");
    for (const needle of needles) expect(logs).not.toContain(needle);

    const { rows: tables } = await sql<{ table_name: string }>`
      select table_name from information_schema.tables
      where table_schema = 'public' and table_type = 'BASE TABLE' order by table_name`.execute(stack.db);
    const leaks: string[] = [];
    let ciphertextSeen = 0;
    for (const { table_name } of tables) {
      const { rows } = await sql<{
        row: string;
      }>`select t::text as row from ${sql.table(table_name)} as t`.execute(stack.db);
      for (const { row } of rows) {
        if (table_name === "destinations") ciphertextSeen++;
        for (const needle of needles)
          if (row.includes(needle)) leaks.push(`${table_name}: ${needle.slice(0, 6)}…`);
      }
    }
    expect(ciphertextSeen).toBeGreaterThan(0);
    expect(tables.map((t) => t.table_name)).toEqual(expect.arrayContaining(["audit_log", "request_logs"]));
    expect(leaks).toEqual([]);
  });
});
