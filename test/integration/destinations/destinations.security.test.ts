import { sql } from "kysely";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { createApiTenant } from "../../support/apiTenant";
import type { DestinationList } from "../../support/apiTypes";
import { describeRouteSecurity, SECURITY_PROBE_TOKENS } from "../../support/routeSecurity";
import { type Stack, startStack } from "../../support/stack";
import { Calls, createProjectVia, META_TOKEN, metaBody, TIKTOK_TOKEN, tiktokBody } from "./support";

// Who may touch destinations: no key / bad key / revoked key → 401; a role too low → 403; another org's
// or another project's destination (for a restricted key) → 404 as if it did not exist. Every refusal
// leaves the org's rows as they were. Last, the tokens appear in no answer, no log line, and no table
// but as ciphertext.

let stack: Stack;
let calls: Calls;
beforeAll(async () => {
  stack = await startStack({ consumer: "recorder" });
  calls = new Calls(stack);
});
afterAll(() => stack?.dispose());

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

// 401, 403 per role (developer reads, admin changes and test-sends), 404 for another org's or another
// project's destinations, nothing changed after each refusal: the shared suite, on every destination route
// (relay deliveries and dead-letter replay included).
describeRouteSecurity(() => stack, "Destinations");

describe("destinations: security", () => {
  test("another org's key lists only its own destinations, never this org's", async () => {
    const victim = await orgWithMeta();
    const attacker = await createApiTenant(stack.db);
    const own = await createProjectVia(calls, attacker.secret);
    const listed = await calls.send<DestinationList>(
      attacker.secret,
      "GET",
      `/v1/projects/${own}/destinations`,
    );
    expect(listed.body.data).toEqual([]);
    expect(listed.text).not.toContain(victim.projectId);
    const attackerRows = await stack.db
      .selectFrom("destinations")
      .select("kind")
      .where("org_id", "=", attacker.orgId)
      .execute();
    expect(attackerRows).toEqual([]);
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
    // The suite's own probe tokens too: its requests (PUT by every kind of key) are among the answers.
    const needles = [META_TOKEN, TIKTOK_TOKEN, ...SECURITY_PROBE_TOKENS].flatMap((t) => [t, t.slice(0, 16)]);

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
