import { sql } from "kysely";
import { afterAll, beforeAll, expect, test } from "vitest";
import { parseKeyring } from "../../../functions/destinations/crypto";
import { handleEventsMessages } from "../../../functions/events/handleEventsMessage";
import { runDeletions } from "../../../functions/lifecycle/cascade";
import { relayBatch } from "../../../functions/relay/relayBatch";
import { defaultSendDeps } from "../../../functions/relay/send";
import { emitWebhookEvent } from "../../../functions/webhooks/outbox";
import { maintenanceRoleUrl, roleUrl } from "../../../scripts/local/migrate";
import { createNodeDb } from "../../../scripts/local/node-db";
import type { Db } from "../../../shared/db";
import { withTenant } from "../../../shared/db";
import { createLogger } from "../../../shared/logger";
import { addApiKey } from "../../support/apiTenant";
import { testDatabaseUrl } from "../../support/database";
import { addDestinations } from "../../support/destinations";
import { type FakePlatforms, startFakePlatforms } from "../../support/fakePlatforms";
import { eventsMessage, queuedEvent, relayEvent, relayMessage } from "../../support/messages";
import { type Stack, startStack, TEST_DESTINATION_KEYRING, waitFor } from "../../support/stack";
import { createTenant, type TestTenant } from "../../support/tenant";
import { type Receiver, startReceiver } from "../../support/webhookReceiver";
import { call } from "../dsar/helpers";

// Messages already queued when an org is deleted: the consumer drops its events, the relay sends nothing
// and records nothing, before the cascade and after it (the org's rows gone) alike: acknowledged, never
// retried into a dead letter.

let stack: Stack;
let fakes: FakePlatforms;
let relayDb: Db;
let consumerDb: Db;
let maintenance: Db;
let receiver: Receiver;
beforeAll(async () => {
  fakes = await startFakePlatforms();
  receiver = await startReceiver();
  stack = await startStack({
    consumer: "recorder",
    relayVars: fakes.vars,
    apiVars: { WEBHOOK_ALLOW_LOCAL_HTTP: "true" },
    webhooksVars: {
      WEBHOOK_RETRY_SCHEDULE_SECONDS: "0,0",
      WEBHOOK_TIMEOUT_MS: "500",
      WEBHOOK_LEASE_SECONDS: "60",
    },
    cronVars: { WEBHOOK_LEASE_SECONDS: "60" },
  });
  relayDb = createNodeDb(roleUrl(testDatabaseUrl(), "layers_relay"), 2);
  consumerDb = createNodeDb(roleUrl(testDatabaseUrl(), "layers_consumer"), 2);
  maintenance = createNodeDb(maintenanceRoleUrl(testDatabaseUrl()), 2);
});
afterAll(async () => {
  await relayDb?.destroy();
  await consumerDb?.destroy();
  await maintenance?.destroy();
  await stack?.dispose();
  await fakes?.close();
  await receiver?.close();
});

const sent: unknown[] = [];
const consumerDeps = () => ({
  db: consumerDb,
  relayQueue: { send: async (m: unknown) => void sent.push(m), sendBatch: async () => {} },
  deadLetterQueue: { send: async (m: unknown) => void sent.push(m) },
  log: createLogger({}, () => {}),
  retryBaseSeconds: 1,
  retryMaxSeconds: 1,
});

function relay(t: TestTenant, eventId: string) {
  return relayBatch(
    {
      db: relayDb,
      keyring: parseKeyring(TEST_DESTINATION_KEYRING),
      endpoints: {
        metaApiBase: fakes.vars.META_API_BASE,
        tiktokApiBase: fakes.vars.TIKTOK_API_BASE,
        appleAdServicesUrl: fakes.vars.APPLE_ADSERVICES_URL,
        timeoutMs: 5_000,
        appleNotFoundRetryIntervalMs: 10,
      },
      deps: defaultSendDeps,
      retryBaseSeconds: 0,
      retryMaxSeconds: 0,
    },
    relayMessage(t, "tiktok", [
      relayEvent({ eventId, userId: "u1", properties: { value: 1, currency: "USD" } }),
    ]),
    1,
  );
}

async function consume(t: TestTenant, eventId: string) {
  const [decision] = await handleEventsMessages(
    // biome-ignore lint/suspicious/noExplicitAny: the queue stand-ins only need send
    consumerDeps() as any,
    [{ id: eventId, body: eventsMessage(t, [queuedEvent({ eventId, userId: "u1" })]), attempts: 1 }],
  );
  return decision;
}

test("a deleted org's queued events and relay batches are dropped, before and after the cascade", async () => {
  const t = await createTenant(stack.db);
  const owner = await addApiKey(stack.db, t.orgId, "owner");
  await addDestinations(stack.db, t, fakes, { tiktok: {} });
  // Alive: the relay sends (the fake platform sees the project) and the consumer stores.
  expect(await relay(t, "alive-1")).toMatchObject({ kind: "ack" });
  expect(fakes.tiktok.requests.filter((r) => r.body.includes("alive-1"))).toHaveLength(1);
  expect((await consume(t, "alive-2"))?.kind).toBe("ack");

  expect((await call(stack, owner.secret, "DELETE", "/v1/org", { confirm: "Test org" })).status).toBe(202);
  const deliveriesBefore = await stack.db
    .selectFrom("relay_deliveries")
    .select("batch_id")
    .where("org_id", "=", t.orgId)
    .execute();

  // Pending deletion: nothing sent, nothing written.
  expect(await relay(t, "late-1")).toMatchObject({ kind: "ack", sent: 0 });
  expect(fakes.tiktok.requests.filter((r) => r.body.includes("late-1"))).toHaveLength(0);
  expect(
    await stack.db.selectFrom("relay_deliveries").select("batch_id").where("org_id", "=", t.orgId).execute(),
  ).toEqual(deliveriesBefore);
  expect(await consume(t, "late-2")).toMatchObject({ kind: "ack", outcome: "dropped (unknown project)" });
  expect(
    await stack.db.selectFrom("sdk_events").select("event_id").where("event_id", "=", "late-2").execute(),
  ).toEqual([]);

  // After the cascade (every row of the org gone): still acknowledged, still nothing written.
  for (let i = 0; i < 10; i++) {
    const { more } = await runDeletions(maintenance, "org", new Date(), {});
    if (!more) break;
  }
  expect(await stack.db.selectFrom("organizations").select("id").where("id", "=", t.orgId).execute()).toEqual(
    [],
  );
  expect(await relay(t, "gone-1")).toMatchObject({ kind: "ack", sent: 0 });
  expect(await consume(t, "gone-2")).toMatchObject({ kind: "ack" });
  expect(
    await stack.db.selectFrom("relay_deliveries").select("batch_id").where("org_id", "=", t.orgId).execute(),
  ).toEqual([]);
  expect(sent.filter((m) => JSON.stringify(m).includes("gone-"))).toEqual([]);
});

test("a deleted org's pending webhook deliveries are closed unsent, not retried", async () => {
  const t = await createTenant(stack.db);
  const owner = await addApiKey(stack.db, t.orgId, "owner");
  const created = await call(stack, owner.secret, "POST", "/v1/webhook-endpoints", {
    url: receiver.url("/deleted-org"),
    eventTypes: [],
  });
  expect(created.status).toBe(201);
  const messageId = await withTenant(stack.db, t.orgId, (tx) =>
    emitWebhookEvent(tx, {
      orgId: t.orgId,
      type: "api_key.created",
      payload: { apiKeyId: "key_x", role: "developer", mode: "live", projectId: null, link: "/v1/api-keys" },
      now: new Date(),
    }),
  );
  expect(messageId).toBeTruthy();
  expect((await call(stack, owner.secret, "DELETE", "/v1/org", { confirm: "Test org" })).status).toBe(202);

  // The every-minute sweep puts the deliveries on the Queue; the webhooks Worker closes them unsent.
  const statusOf = async () => {
    const { rows } = await sql<{ status: string }>`
      select status from webhook_deliveries where org_id = ${t.orgId} and message_id = ${messageId}`.execute(
      stack.db,
    );
    return rows.map((r) => r.status);
  };
  expect(await statusOf()).toEqual(["pending"]);
  await waitFor(
    async () => {
      await stack.cron(new Date(), "* * * * *");
      return (await statusOf()).every((s) => s === "failed") ? true : undefined;
    },
    30_000,
    500,
  );
  expect(receiver.received("/deleted-org")).toEqual([]);
});
