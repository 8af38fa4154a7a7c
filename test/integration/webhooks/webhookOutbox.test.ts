import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { issueApiKey } from "../../../functions/apiKeys/verbs";
import type { VerbContext } from "../../../functions/context";
import { executeDeletions, MAX_ATTEMPTS } from "../../../functions/deletionRequests/executeDeletions";
import { setDestinationStatus } from "../../../functions/destinations/store";
import { createS3Store } from "../../../functions/storage/objectStore";
import { WEBHOOK_EVENTS, type WebhookEventType } from "../../../functions/webhooks/events";
import { emitWebhookEvent } from "../../../functions/webhooks/outbox";
import { maintenanceRoleUrl, roleUrl } from "../../../scripts/local/migrate";
import { createNodeDb } from "../../../scripts/local/node-db";
import { type Db, withTenant } from "../../../shared/db";
import { createLogger } from "../../../shared/logger";
import { type Api, api } from "../../support/api";
import { createApiTenant } from "../../support/apiTenant";
import { testDatabaseUrl } from "../../support/database";
import { rememberSecret } from "../../support/issuedSecrets";
import { type Stack, startStack } from "../../support/stack";

// The outbox: an event is written in the transaction of the change that causes it, with one pending
// delivery per endpoint that wants it — so a rolled-back change notifies nobody, a committed one exactly
// once, and only the endpoints whose filters match (type, project, enabled, not deleted, this org). Each
// role that emits (API, relay, Cron) does so with its own grants. Every payload written here must match its
// catalogue schema and carry no personal data.

let stack: Stack;
let apiDb: Db;
let relayDb: Db;
let maintenance: Db;
beforeAll(async () => {
  stack = await startStack({ consumer: "recorder", apiVars: { WEBHOOK_ALLOW_LOCAL_HTTP: "true" } });
  apiDb = createNodeDb(roleUrl(testDatabaseUrl(), "layers_api"), 2);
  relayDb = createNodeDb(roleUrl(testDatabaseUrl(), "layers_relay"), 2);
  maintenance = createNodeDb(maintenanceRoleUrl(testDatabaseUrl()), 2);
});
afterAll(async () => {
  await Promise.all([apiDb?.destroy(), relayDb?.destroy(), maintenance?.destroy()]);
  await stack?.dispose();
});

/** Orgs this file made: their messages are checked against the catalogue and for personal data at the end. */
const orgs: string[] = [];
/** Personal or free-text values this file put into changes that emit events: no payload may contain one. */
const personal: string[] = [];

async function org(): Promise<{ orgId: string; as: Api; ownerKeyId: string }> {
  const tenant = await createApiTenant(stack.db);
  orgs.push(tenant.orgId);
  return { orgId: tenant.orgId, as: api(stack, tenant.secret), ownerKeyId: tenant.keyId };
}

async function endpoint(as: Api, body: Record<string, unknown>): Promise<string> {
  const description = `endpoint of ${randomUUID()}`;
  personal.push(description);
  const created = await as.post<unknown, { id: string; secret: string }>("/v1/webhook-endpoints", {
    url: `http://127.0.0.1:9/${randomUUID()}`,
    description,
    ...body,
  });
  expect(created.status, created.text).toBe(201);
  rememberSecret(created.body.secret);
  return created.body.id;
}

async function project(as: Api): Promise<string> {
  const created = await as.post<unknown, { id: string }>("/v1/projects", { name: "Outbox app" });
  expect(created.status).toBe(201);
  return created.body.id;
}

const messagesOf = (orgId: string) =>
  stack.db
    .selectFrom("webhook_messages")
    .select(["id", "event_type", "project_id", "payload", "dispatched_at"])
    .where("org_id", "=", orgId)
    .orderBy("created_at")
    .execute();

async function deliveredTo(messageId: string): Promise<string[]> {
  const rows = await stack.db
    .selectFrom("webhook_deliveries")
    .select(["endpoint_id", "status", "attempts", "org_id"])
    .where("message_id", "=", messageId)
    .execute();
  for (const r of rows) expect(r).toMatchObject({ status: "pending", attempts: 0 });
  return rows.map((r) => r.endpoint_id).sort();
}

function verbContext(db: Db, orgId: string, actorId: string): VerbContext {
  return {
    db,
    orgId,
    actor: { type: "api_key", id: actorId },
    role: "owner",
    projectId: null,
    now: new Date(),
    requestId: `req_${randomUUID()}`,
    log: createLogger({}, () => {}),
  };
}

describe("in the change's transaction", () => {
  test("a change that rolls back emits nothing; the same change committed emits exactly one message", async () => {
    const { orgId, ownerKeyId, as } = await org();
    const all = await endpoint(as, {});
    const name = `rolled back ${randomUUID()}`;
    personal.push(name);
    const failed = withTenant(apiDb, orgId, async (tx) => {
      const key = await issueApiKey(verbContext(tx, orgId, ownerKeyId), {
        name,
        role: "developer",
        mode: "live",
      });
      rememberSecret(key.secret);
      // The change and its event are written; then something later in the same transaction fails.
      expect(await messagesOf(orgId)).toEqual([]); // not visible outside the transaction yet
      throw new Error("forced failure after the change");
    });
    await expect(failed).rejects.toThrow("forced failure after the change");
    expect(await messagesOf(orgId)).toEqual([]);
    expect(
      await stack.db
        .selectFrom("webhook_deliveries")
        .select("message_id")
        .where("org_id", "=", orgId)
        .execute(),
    ).toEqual([]);
    expect(await stack.db.selectFrom("api_keys").select("id").where("name", "=", name).execute()).toEqual([]);

    const committed = await withTenant(apiDb, orgId, async (tx) => {
      const key = await issueApiKey(verbContext(tx, orgId, ownerKeyId), {
        name,
        role: "developer",
        mode: "live",
      });
      rememberSecret(key.secret);
      return key;
    });
    const messages = await messagesOf(orgId);
    expect(messages).toHaveLength(1);
    expect(messages[0]).toMatchObject({
      event_type: "api_key.created",
      project_id: null,
      dispatched_at: null,
      payload: {
        apiKeyId: committed.id,
        role: "developer",
        mode: "live",
        projectId: null,
        link: "/v1/api-keys",
      },
    });
    expect(await deliveredTo(messages[0]!.id)).toEqual([all]);
  });

  test("emitting outside a transaction is refused (the outbox promise would not hold)", async () => {
    const { orgId } = await org();
    await expect(
      emitWebhookEvent(stack.db, {
        orgId,
        type: "project.archived",
        payload: { projectId: "proj_x", archivedAt: new Date().toISOString(), link: "/v1/projects/proj_x" },
        now: new Date(),
      }),
    ).rejects.toThrow("inside the change's transaction");
    expect(await messagesOf(orgId)).toEqual([]);
  });

  test("a payload that does not match its schema fails the change instead of being sent", async () => {
    const { orgId, as } = await org();
    await endpoint(as, {});
    const attempt = withTenant(apiDb, orgId, (tx) =>
      emitWebhookEvent(tx, {
        orgId,
        type: "api_key.revoked",
        // An extra field (here: personal data) is not in the strict schema.
        payload: {
          apiKeyId: "key_x",
          role: "admin",
          mode: "live",
          projectId: null,
          link: "/v1/api-keys",
          email: "someone@example.com",
        } as never,
        now: new Date(),
      }),
    );
    await expect(attempt).rejects.toThrow();
    expect(await messagesOf(orgId)).toEqual([]);
  });
});

describe("fan-out: only the endpoints that want the event", () => {
  test("type filter, project filter, disabled and deleted endpoints, another org", async () => {
    const { orgId, as } = await org();
    const p1 = await project(as);
    const p2 = await project(as);
    const all = await endpoint(as, {});
    const archivedInP1 = await endpoint(as, { eventTypes: ["project.archived"], projectId: p1 });
    const keysOnly = await endpoint(as, { eventTypes: ["api_key.created"] });
    const disabled = await endpoint(as, { enabled: false });
    const deleted = await endpoint(as, {});
    expect((await as.delete(`/v1/webhook-endpoints/${deleted}`)).status).toBe(204);
    const onlyP2 = await endpoint(as, { projectId: p2 });
    const outsider = await org();
    const theirs = await endpoint(outsider.as, {});

    expect((await as.post(`/v1/projects/${p1}/archive`)).status).toBe(200);
    let messages = await messagesOf(orgId);
    expect(messages.map((m) => m.event_type)).toEqual(["project.archived"]);
    expect(messages[0]).toMatchObject({
      project_id: p1,
      payload: { projectId: p1, link: `/v1/projects/${p1}` },
    });
    expect(await deliveredTo(messages[0]!.id)).toEqual([all, archivedInP1].sort());
    // Archiving again changes nothing, so it notifies nobody.
    expect((await as.post(`/v1/projects/${p1}/archive`)).status).toBe(200);
    expect(await messagesOf(orgId)).toHaveLength(1);

    // An org-level event: never to a project-filtered endpoint.
    const name = `key ${randomUUID()}`;
    personal.push(name);
    const key = await as.post<unknown, { id: string; secret: string }>("/v1/api-keys", {
      name,
      role: "admin",
    });
    rememberSecret(key.body.secret);
    messages = await messagesOf(orgId);
    expect(messages.map((m) => m.event_type)).toEqual(["project.archived", "api_key.created"]);
    expect(await deliveredTo(messages[1]!.id)).toEqual([all, keysOnly].sort());

    // The other org's endpoint got nothing, and none of this org's endpoints is in its rows.
    const theirDeliveries = await stack.db
      .selectFrom("webhook_deliveries")
      .select("message_id")
      .where("endpoint_id", "=", theirs)
      .execute();
    expect(theirDeliveries).toEqual([]);
    expect(await messagesOf(outsider.orgId)).toEqual([]);
    for (const id of [disabled, deleted, onlyP2]) {
      expect(
        await stack.db
          .selectFrom("webhook_deliveries")
          .select("message_id")
          .where("endpoint_id", "=", id)
          .execute(),
      ).toEqual([]);
    }
  });

  test("no endpoint wants it: no message at all", async () => {
    const { orgId, as } = await org();
    await endpoint(as, { eventTypes: ["deletion_request.failed"] });
    const key = await as.post<unknown, { secret: string }>("/v1/api-keys", { name: "quiet", role: "admin" });
    rememberSecret(key.body.secret);
    expect(await messagesOf(orgId)).toEqual([]);
  });

  test("a manual disable tells the org's other endpoints (webhook_endpoint.disabled), not the disabled one", async () => {
    const { orgId, as } = await org();
    const watcher = await endpoint(as, { eventTypes: ["webhook_endpoint.disabled"] });
    const target = await endpoint(as, {});
    expect((await as.patch(`/v1/webhook-endpoints/${target}`, { enabled: false })).status).toBe(200);
    const messages = await messagesOf(orgId);
    expect(messages).toHaveLength(1);
    expect(messages[0]).toMatchObject({
      event_type: "webhook_endpoint.disabled",
      payload: { webhookEndpointId: target, reason: "manual", failingSince: null },
    });
    expect(await deliveredTo(messages[0]!.id)).toEqual([watcher]);
  });
});

describe("events of the other Workers, with their own roles", () => {
  test("relay: destination.failing on active → failing only, destination.recovered on failing → active", async () => {
    const { orgId, as } = await org();
    const projectId = await project(as);
    const all = await endpoint(as, {});
    const token = "EAAoutboxProbeToken0000000000000000";
    rememberSecret(token);
    const put = await as.put(`/v1/projects/${projectId}/destinations/meta`, {
      datasetId: "123456789012345",
      accessToken: token,
    });
    expect(put.status).toBe(201);
    const t1 = new Date("2026-11-20T10:00:00.000Z");
    const t2 = new Date("2026-11-20T11:00:00.000Z");
    const t3 = new Date("2026-11-20T12:00:00.000Z");
    await withTenant(relayDb, orgId, (tx) => setDestinationStatus(tx, projectId, "meta", "failing", t1));
    await withTenant(relayDb, orgId, (tx) => setDestinationStatus(tx, projectId, "meta", "failing", t2));
    await withTenant(relayDb, orgId, (tx) => setDestinationStatus(tx, projectId, "meta", "active", t3));
    await withTenant(relayDb, orgId, (tx) => setDestinationStatus(tx, projectId, "meta", "active", t3));
    const messages = await messagesOf(orgId);
    const link = `/v1/projects/${projectId}/destinations/meta`;
    expect(messages.map((m) => [m.event_type, m.payload])).toEqual([
      [
        "destination.failing",
        { projectId, destination: "meta", status: "failing", failingSince: t1.toISOString(), link },
      ],
      [
        "destination.recovered",
        { projectId, destination: "meta", status: "active", recoveredAt: t3.toISOString(), link },
      ],
    ]);
    for (const m of messages) expect(await deliveredTo(m.id)).toEqual([all]);
    // The destination's own status is what it was before this change (first failure kept, then cleared).
    const row = await stack.db
      .selectFrom("destinations")
      .select(["status", "failing_since"])
      .where("project_id", "=", projectId)
      .executeTakeFirstOrThrow();
    expect(row).toEqual({ status: "active", failing_since: null });
  });

  test("Cron (layers_maintenance): deletion_request.completed with the receipt's counts, never the user", async () => {
    const { orgId, as } = await org();
    const projectId = await project(as);
    const all = await endpoint(as, { eventTypes: ["deletion_request.completed", "deletion_request.failed"] });
    const userId = `person-${randomUUID()}@example.com`;
    personal.push(userId);
    const requested = await as.post<unknown, { id: string }>(`/v1/projects/${projectId}/deletion-requests`, {
      userId,
    });
    expect(requested.status, requested.text).toBe(202);
    for (let i = 0; i < 10; i++) {
      const row = await stack.db
        .selectFrom("deletion_requests")
        .select("status")
        .where("id", "=", requested.body.id)
        .executeTakeFirstOrThrow();
      if (row.status === "completed") break;
      await executeDeletions(maintenance, new Date());
    }
    const messages = await messagesOf(orgId);
    expect(messages).toHaveLength(1);
    expect(messages[0]).toMatchObject({
      event_type: "deletion_request.completed",
      project_id: projectId,
      payload: {
        deletionRequestId: requested.body.id,
        projectId,
        status: "completed",
        deletedEvents: 0,
        deletedUsers: 0,
        link: `/v1/deletion-requests/${requested.body.id}`,
      },
    });
    expect(await deliveredTo(messages[0]!.id)).toEqual([all]);
  });
});

test("Cron: deletion_request.failed when a request's last attempt fails (dead-letter storage unreachable)", async () => {
  const { orgId, as } = await org();
  const projectId = await project(as);
  const all = await endpoint(as, { eventTypes: ["deletion_request.failed"] });
  const userId = `failing-${randomUUID()}@example.com`;
  personal.push(userId);
  const requested = await as.post<unknown, { id: string }>(`/v1/projects/${projectId}/deletion-requests`, {
    userId,
  });
  expect(requested.status, requested.text).toBe(202);
  // Its last allowed attempt, dated long ago so this run claims no other file's request.
  const past = new Date("2020-01-01T00:00:00.000Z");
  await stack.db
    .updateTable("deletion_requests")
    .set({ attempts: MAX_ATTEMPTS - 1, requested_at: past })
    .where("id", "=", requested.body.id)
    .execute();
  // Real HTTP to an address where nothing listens: erasing from dead-letter storage fails.
  const unreachable = createS3Store({
    endpoint: "http://127.0.0.1:9",
    bucket: "layers-dead-letters",
    region: "us-east-1",
    accessKeyId: "none",
    secretAccessKey: "none",
  });
  const run = await executeDeletions(maintenance, new Date(past.getTime() + 1_000), {
    deadLetters: unreachable,
  });
  expect(run.counts.requests_failed).toBe(1);
  const messages = await messagesOf(orgId);
  expect(messages).toHaveLength(1);
  expect(messages[0]).toMatchObject({
    event_type: "deletion_request.failed",
    project_id: projectId,
    payload: {
      deletionRequestId: requested.body.id,
      projectId,
      status: "failed",
      attempts: MAX_ATTEMPTS,
      link: `/v1/deletion-requests/${requested.body.id}`,
    },
  });
  expect(await deliveredTo(messages[0]!.id)).toEqual([all]);
});

test("every payload written by this file matches its catalogue schema and carries no personal data or secret", async () => {
  const rows = await stack.db
    .selectFrom("webhook_messages")
    .select(["event_type", "payload"])
    .where("org_id", "in", orgs)
    .execute();
  const types = new Set(rows.map((r) => r.event_type));
  for (const t of [
    "api_key.created",
    "project.archived",
    "destination.failing",
    "destination.recovered",
    "deletion_request.completed",
    "deletion_request.failed",
    "webhook_endpoint.disabled",
  ]) {
    expect(types, t).toContain(t);
  }
  for (const { event_type, payload } of rows) {
    const schema = WEBHOOK_EVENTS[event_type as WebhookEventType].schema;
    const parsed = schema.safeParse(payload);
    expect(parsed.success, `${event_type}: ${JSON.stringify(payload)}`).toBe(true);
    expect(parsed.data).toEqual(payload);
    const text = JSON.stringify(payload);
    for (const value of personal) expect(text, event_type).not.toContain(value);
    expect(text).not.toMatch(/@|lp_(live|test|pk)_|whsec_|127\.0\.0\.1/);
  }
});
