import { sql } from "kysely";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { createApiTenant } from "../../support/apiTenant";
import { type FakePlatforms, startFakePlatforms } from "../../support/fakePlatforms";
import { type Stack, startStack } from "../../support/stack";
import { Calls, createProjectVia, META_TOKEN, metaBody } from "./support";

// A test-send calls Meta or TikTok, which may take seconds. While it waits, the API must hold no open
// transaction (and so no pooled connection pinned to one): load, call, record, like the relay. The fake
// platform holds the request open; meanwhile the test looks at the database's backends for the API's role.

let stack: Stack;
let fakes: FakePlatforms;
let calls: Calls;
beforeAll(async () => {
  // The platform holds the request longer than the test needs to look, and the API waits longer still.
  fakes = await startFakePlatforms({ hangMs: 5_000 });
  stack = await startStack({
    consumer: "recorder",
    apiVars: { ...fakes.vars, DESTINATION_TEST_TIMEOUT_MS: "20000" },
  });
  calls = new Calls(stack);
});
afterAll(async () => {
  await stack?.dispose();
  await fakes?.close();
});

/** Backends of the API's role inside a transaction (the one a test-send would hold over the call). */
async function appTransactions(): Promise<{ state: string; query: string }[]> {
  const { rows } = await sql<{ state: string; query: string }>`
    select state, query from pg_stat_activity
    where usename = 'layers_api' and xact_start is not null and pid <> pg_backend_pid()
  `.execute(stack.db);
  return rows;
}

describe("destinations: test-send holds no transaction during the platform call", () => {
  // PGlite is one session: there are no per-connection backends to look at there.
  test.runIf(Boolean(process.env.TEST_DATABASE_URL))(
    "while Meta has not answered, no backend of the API role is in a transaction; the answer is still recorded",
    async () => {
      const datasetId = "700000000000077";
      fakes.meta.tokens.set(datasetId, META_TOKEN);
      const owner = await createApiTenant(stack.db);
      const projectId = await createProjectVia(calls, owner.secret);
      const put = await calls.send(owner.secret, "PUT", `/v1/projects/${projectId}/destinations/meta`, {
        ...metaBody({ datasetId }),
      });
      expect(put.status).toBe(201);

      const before = fakes.meta.requests.length;
      fakes.meta.failNext(1, { kind: "hang", afterAccept: false });
      let answered = false;
      const pending = calls
        .send(owner.secret, "POST", `/v1/projects/${projectId}/destinations/meta/test`, undefined, {
          "Idempotency-Key": "test-send-no-transaction",
        })
        .finally(() => {
          answered = true;
        });

      // The platform has the request: the API is now waiting on it.
      while (fakes.meta.requests.length === before) await new Promise((resolve) => setTimeout(resolve, 20));
      const during = await appTransactions();
      // What was looked at was the wait itself, not its aftermath.
      expect(answered).toBe(false);
      expect(during).toEqual([]);

      const sent = await pending;
      expect(sent.status).toBe(200);
      expect(sent.body).toMatchObject({ outcome: "retry" });
      // Recorded after the call: the audit row, and the answer stored for the Idempotency-Key.
      const audit = await stack.db
        .selectFrom("audit_log")
        .select("changes")
        .where("org_id", "=", owner.orgId)
        .where("action", "=", "destination.test_sent")
        .executeTakeFirstOrThrow();
      expect(audit.changes).toMatchObject({ after: { outcome: "retry" } });
      const replay = await calls.send(
        owner.secret,
        "POST",
        `/v1/projects/${projectId}/destinations/meta/test`,
        undefined,
        { "Idempotency-Key": "test-send-no-transaction" },
      );
      expect(replay.headers.get("Idempotent-Replayed")).toBe("true");
      expect(replay.text).toBe(sent.text);
      expect(fakes.meta.requests.length).toBe(before + 1);
    },
  );
});
