import { sql } from "kysely";
import { afterAll, beforeAll, expect, test } from "vitest";
import { persistEvents } from "../../../functions/events/persistEvents";
import { runDeletions } from "../../../functions/lifecycle/cascade";
import { maintenanceRoleUrl } from "../../../scripts/local/migrate";
import { createNodeDb } from "../../../scripts/local/node-db";
import type { Db } from "../../../shared/db";
import { addApiKey } from "../../support/apiTenant";
import { testDatabaseUrl } from "../../support/database";
import { eventsMessage, queuedEvent } from "../../support/messages";
import { type Stack, startStack } from "../../support/stack";
import { metaBody } from "../destinations/support";
import { auditActions, call } from "../dsar/helpers";
import { countRows, seedOrg } from "./seed";

// DELETE /v1/projects/:projectId: refused unless archived; the project's keys stop, its queued events are
// dropped, and the cascade erases only that project (the org's other project and org-level rows stay),
// with exact counts on the deletion and an audit row.

let stack: Stack;
let maintenance: Db;
beforeAll(async () => {
  stack = await startStack({ consumer: "recorder" });
  maintenance = createNodeDb(maintenanceRoleUrl(testDatabaseUrl()), 2);
});
afterAll(async () => {
  await maintenance?.destroy();
  await stack?.dispose();
});

const stores = () => ({
  archive: stack.s3.storage,
  deadLetters: stack.s3.deadLetters,
  media: stack.s3.media,
  exports: stack.s3.exports,
});

async function objectCount(prefix: string, store = stack.s3.media): Promise<number> {
  return (await store.list(prefix)).keys.length;
}

test("a project that is not archived is refused (409 project_not_archived), and nothing changes", async () => {
  const a = await seedOrg(stack.db, stack.s3, "pa");
  const admin = await addApiKey(stack.db, a.orgId, "admin");
  const answer = await call(stack, admin.secret, "DELETE", `/v1/projects/${a.projectId}`);
  expect(answer.status).toBe(409);
  expect(answer.body.error.code).toBe("project_not_archived");
  expect(
    await stack.db
      .selectFrom("project_deletions")
      .select("id")
      .where("project_id", "=", a.projectId)
      .execute(),
  ).toEqual([]);
  const { rows } = await sql<{
    deleted_at: Date | null;
  }>`select deleted_at from projects where id = ${a.projectId}`.execute(stack.db);
  expect(rows[0]?.deleted_at).toBeNull();
});

test("an archived project is erased, only it, with exact counts, an audit row, and its keys stopped", async () => {
  const a = await seedOrg(stack.db, stack.s3, "pb");
  const admin = await addApiKey(stack.db, a.orgId, "admin");
  const otherBefore = await countRows(stack.db, a.orgId, a.otherProjectId);
  expect((await call(stack, admin.secret, "POST", `/v1/projects/${a.projectId}/archive`)).status).toBe(200);

  const asked = await call(stack, admin.secret, "DELETE", `/v1/projects/${a.projectId}`);
  expect(asked.status).toBe(202);
  expect(asked.body).toMatchObject({ object: "project_deletion", projectId: a.projectId, status: "pending" });
  const again = await call(stack, admin.secret, "DELETE", `/v1/projects/${a.projectId}`);
  expect(again.status).toBe(202);
  expect(again.body.id).toBe(asked.body.id);

  // Keys: the project's SDK key is refused at ingest (the test stack caches nothing), and its restricted
  // API key is revoked; queued events of the project are dropped, not written behind the cascade.
  const ingested = await stack.ingest({ eventId: crypto.randomUUID(), name: "open" }, { key: a.sdkKey });
  expect(ingested.status).toBe(401);
  const restricted = await stack.db
    .selectFrom("api_keys")
    .select("revoked_at")
    .where("project_id", "=", a.projectId)
    .execute();
  expect(restricted.length).toBeGreaterThan(0);
  expect(restricted.every((k) => k.revoked_at !== null)).toBe(true);
  const late = await persistEvents(
    stack.db,
    eventsMessage(a, [queuedEvent({ eventId: "late-1", userId: "late" })]),
  );
  expect(late.projectFound).toBe(false);

  const before = await countRows(stack.db, a.orgId, a.projectId);
  // Webhook rows without a project column, reached through the project's messages and endpoints (the
  // archive above emitted one more message, delivered to the org's endpoints).
  const { rows: viaKeys } = await sql<{ deliveries: string; attempts: string }>`
    select
      (select count(*) from webhook_deliveries d where d.message_id in (select id from webhook_messages where project_id = ${a.projectId})
        or d.endpoint_id in (select id from webhook_endpoints where project_id = ${a.projectId})) as deliveries,
      (select count(*) from webhook_attempts w where w.message_id in (select id from webhook_messages where project_id = ${a.projectId})
        or w.endpoint_id in (select id from webhook_endpoints where project_id = ${a.projectId})) as attempts
  `.execute(stack.db);
  for (let i = 0; i < 50; i++) {
    const { more } = await runDeletions(maintenance, "project", new Date(), {
      ...stores(),
      batchRows: 2,
      maxRowsPerRun: 10,
    });
    if (!more) break;
  }
  const done = await call(stack, admin.secret, "GET", `/v1/project-deletions/${asked.body.id}`);
  expect(done.status).toBe(200);
  expect(done.body.status).toBe("completed");

  // Counts: the project's rows of each project-scoped table, the rows reached through foreign keys (the
  // org-level endpoint's delivery and attempt of the project's message, the ads-content link of its
  // container), the project row, and its objects.
  const expected: Record<string, number> = {};
  for (const [table, n] of Object.entries(before.project))
    if (n > 0 && table !== "project_deletions") expected[table] = n;
  expected.projects = 1;
  expected.webhook_deliveries = Number(viaKeys[0]?.deliveries);
  expected.webhook_attempts = Number(viaKeys[0]?.attempts);
  expected.ads_content_containers = 1;
  expected["objects:media"] = 1;
  expected["objects:staging"] = 1;
  expected["objects:dead_letters:events"] = 1;
  expected["objects:dead_letters:relay"] = 1;
  const got = Object.fromEntries(
    Object.entries(done.body.counts as Record<string, number>).filter(([, n]) => n > 0),
  );
  expect(got).toEqual(expected);

  // Only that project: nothing of it is left, the other project and the org's own rows are as they were.
  const after = await countRows(stack.db, a.orgId, a.projectId);
  expect(Object.values(after.project).reduce((x, y) => x + y, 0)).toBe(1); // its project_deletions row
  expect(await countRows(stack.db, a.orgId, a.otherProjectId)).toMatchObject({
    project: otherBefore.project,
  });
  for (const table of ["members", "storage_configs", "ads_content"]) {
    expect(after.all[table], table).toBe(before.all[table]);
  }
  expect(await objectCount(`media/${a.orgId}/${a.projectId}/`)).toBe(0);
  expect(await objectCount(`exports/${a.orgId}/`, stack.s3.exports)).toBe(1);
  // The org's export with events covered the project: withdrawn (its objects go with the expiry job).
  const { rows: exportsLeft } = await sql<{ status: string; error_code: string | null }>`
    select status, error_code from org_exports where org_id = ${a.orgId}`.execute(stack.db);
  expect(exportsLeft).toEqual([{ status: "expired", error_code: "withdrawn_by_deletion" }]);
  expect(await auditActions(stack, a, a.projectId)).toEqual(
    expect.arrayContaining(["project.archived", "project.deletion_requested", "project.deleted"]),
  );
});

test("a project being deleted can be read but not changed: unarchive, rename, keys, layers, destinations → 409", async () => {
  const a = await seedOrg(stack.db, stack.s3, "pd");
  const admin = await addApiKey(stack.db, a.orgId, "admin");
  const project = `/v1/projects/${a.projectId}`;
  expect((await call(stack, admin.secret, "POST", `${project}/archive`)).status).toBe(200);
  expect((await call(stack, admin.secret, "DELETE", project)).status).toBe(202);
  const keys = () =>
    stack.db.selectFrom("sdk_keys").selectAll().where("project_id", "=", a.projectId).orderBy("id").execute();
  const destinations = () =>
    stack.db
      .selectFrom("destinations")
      .selectAll()
      .where("project_id", "=", a.projectId)
      .orderBy("kind")
      .execute();
  const keysBefore = await keys();
  const destinationsBefore = await destinations();

  const changes: [string, string, unknown][] = [
    ["POST", `${project}/unarchive`, undefined],
    ["PATCH", project, { name: "Back from the dead" }],
    ["POST", `${project}/sdk-keys`, undefined],
    ["PUT", `${project}/layers/content`, { enabled: true }],
    ["PUT", `${project}/destinations/meta`, metaBody()],
  ];
  for (const [method, path, body] of changes) {
    const answer = await call(stack, admin.secret, method as never, path, body);
    expect({ method, path, status: answer.status, code: answer.body?.error?.code }).toEqual({
      method,
      path,
      status: 409,
      code: "project_deletion_pending",
    });
  }
  // Nothing changed: still archived and marked, keys and destinations as they were; reads still answer.
  const got = await call(stack, admin.secret, "GET", project);
  expect(got.status).toBe(200);
  expect(got.body).toMatchObject({ archived: true, name: expect.not.stringMatching("Back from the dead") });
  const { rows } = await sql<{ deleted_at: Date | null; archived_at: Date | null }>`
    select deleted_at, archived_at from projects where id = ${a.projectId}`.execute(stack.db);
  expect(rows[0]?.deleted_at).not.toBeNull();
  expect(rows[0]?.archived_at).not.toBeNull();
  expect(await keys()).toEqual(keysBefore);
  expect(await destinations()).toEqual(destinationsBefore);
});

test("another org's key gets 404 on the project and on its deletion", async () => {
  const a = await seedOrg(stack.db, stack.s3, "pc");
  const b = await seedOrg(stack.db, stack.s3, "pd");
  const adminA = await addApiKey(stack.db, a.orgId, "admin");
  const adminB = await addApiKey(stack.db, b.orgId, "admin");
  await call(stack, adminA.secret, "POST", `/v1/projects/${a.projectId}/archive`);
  const asked = await call(stack, adminA.secret, "DELETE", `/v1/projects/${a.projectId}`);
  expect(asked.status).toBe(202);
  const outside = await call(stack, adminB.secret, "DELETE", `/v1/projects/${a.projectId}`);
  expect(outside.status).toBe(404);
  const read = await call(stack, adminB.secret, "GET", `/v1/project-deletions/${asked.body.id}`);
  expect(read.status).toBe(404);
  const developer = await addApiKey(stack.db, a.orgId, "developer");
  const lesser = await call(stack, developer.secret, "DELETE", `/v1/projects/${a.otherProjectId}`);
  expect(lesser.status).toBe(403);
});
