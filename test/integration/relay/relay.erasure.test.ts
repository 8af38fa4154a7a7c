import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { parseKeyring } from "../../../functions/destinations/crypto";
import { putDestination } from "../../../functions/destinations/store";
import { persistEvents } from "../../../functions/events/persistEvents";
import { relayBatch, relayDeadLetter } from "../../../functions/relay/relayBatch";
import { defaultSendDeps } from "../../../functions/relay/send";
import { roleUrl } from "../../../scripts/local/migrate";
import { createNodeDb } from "../../../scripts/local/node-db";
import { type Db, withTenant } from "../../../shared/db";
import type { RelayEvent, RelayMessage } from "../../../shared/schemas/relay";
import { addApiKey, bearer } from "../../support/apiTenant";
import { testDatabaseUrl } from "../../support/database";
import { addDestinations } from "../../support/destinations";
import { type FakePlatforms, startFakePlatforms } from "../../support/fakePlatforms";
import { eventsMessage, queuedEvent, relayEvent } from "../../support/messages";
import { type Stack, startStack, TEST_DESTINATION_KEYRING, waitFor } from "../../support/stack";
import { createTenant, type TestTenant } from "../../support/tenant";

// Erasure reaches the relay: a batch queued, retrying, dead-lettered or waiting for replay when a user is
// deleted or suppressed never sends that user's events, never stores an attribution or a dead letter for
// them. The rule is the consumer's (schema.sql erased_by_request), applied to the stored rows.

let stack: Stack;
let fakes: FakePlatforms;
let relayDb: Db;
let consumerDb: Db;

beforeAll(async () => {
  fakes = await startFakePlatforms();
  stack = await startStack({ relayVars: fakes.vars });
  relayDb = createNodeDb(roleUrl(testDatabaseUrl(), "layers_relay"), 2);
  consumerDb = createNodeDb(roleUrl(testDatabaseUrl(), "layers_consumer"), 2);
});
afterAll(async () => {
  await relayDb?.destroy();
  await consumerDb?.destroy();
  await stack?.dispose();
  await fakes?.close();
});

/** Purchases of two users, through the real edge and consumer. */
async function ingest(t: TestTenant, users: string[], perUser: number): Promise<Map<string, string[]>> {
  const byUser = new Map<string, string[]>();
  const events = users.flatMap((user) =>
    Array.from({ length: perUser }, (_, i) => {
      const eventId = `${t.projectId}-${user}-${i}`;
      byUser.set(user, [...(byUser.get(user) ?? []), eventId]);
      return { eventId, name: "purchase", userId: user, properties: { value: 1, currency: "USD" } };
    }),
  );
  expect((await stack.ingest({ events }, { key: t.sdkKey })).status).toBe(202);
  return byUser;
}

async function deleteUser(t: TestTenant, admin: string, userId: string, query = "") {
  const res = await stack.api(`/v1/projects/${t.projectId}/events/users/${userId}${query}`, {
    method: "DELETE",
    headers: bearer(admin),
  });
  expect(res.status).toBe(202);
}

async function deliveryRows(t: TestTenant, kind: string, secret: string) {
  const res = await stack.api(`/v1/projects/${t.projectId}/destinations/${kind}/deliveries?limit=100`, {
    headers: bearer(secret),
  });
  return ((await res.json()) as { data: Record<string, unknown>[] }).data;
}

describe("a batch still queued or retrying when the user is deleted", () => {
  test("the erased user's events never reach the platform after the deletion completes; the others do", async () => {
    const t = await createTenant(stack.db);
    const admin = (await addApiKey(stack.db, t.orgId, "admin")).secret;
    await addDestinations(stack.db, t, fakes, { tiktok: {} });
    // Down, asking for 2 s between attempts: the batch keeps retrying (never running out of attempts)
    // while the deletion happens.
    fakes.tiktok.failAlways({ kind: "status", status: 429, retryAfter: "2" });
    const ids = await ingest(t, ["keep", "erase"], 3);
    // The batch is retrying against a platform that is down.
    await waitFor(async () =>
      fakes.tiktok.requests.some((r) => r.body.includes(t.projectId)) ? true : undefined,
    );
    await deleteUser(t, admin, "erase");
    await stack.cron(new Date());
    const receipt = await stack.db
      .selectFrom("deletion_requests")
      .select("status")
      .where("project_id", "=", t.projectId)
      .executeTakeFirstOrThrow();
    expect(receipt.status).toBe("completed");

    fakes.tiktok.failAlways(null);
    await waitFor(async () =>
      ids.get("keep")!.every((id) => fakes.tiktok.accepted.has(id)) ? true : undefined,
    );
    for (const id of ids.get("erase")!) expect(fakes.tiktok.accepted.has(id)).toBe(false);
    const [row] = await waitFor(async () => {
      const rows = await deliveryRows(t, "tiktok", admin);
      return rows[0]?.status === "delivered" ? rows : undefined;
    });
    expect(row).toMatchObject({ sentCount: 3, eventCount: 6, skipped: { user_erased: 3 } });
  });

  test("a suppression made while the batch waits stops it too, before the Cron run", async () => {
    const t = await createTenant(stack.db);
    const admin = (await addApiKey(stack.db, t.orgId, "admin")).secret;
    await addDestinations(stack.db, t, fakes, { tiktok: {} });
    // Down, asking for 2 s between attempts: the batch keeps retrying (never running out of attempts)
    // while the deletion happens.
    fakes.tiktok.failAlways({ kind: "status", status: 429, retryAfter: "2" });
    const ids = await ingest(t, ["only"], 2);
    await waitFor(async () =>
      fakes.tiktok.requests.some((r) => r.body.includes(t.projectId)) ? true : undefined,
    );
    await deleteUser(t, admin, "only", "?suppress=true");
    fakes.tiktok.failAlways(null);
    const [row] = await waitFor(async () => {
      const rows = await deliveryRows(t, "tiktok", admin);
      return rows[0]?.status === "skipped" ? rows : undefined;
    });
    expect(row).toMatchObject({ sentCount: 0, eventCount: 2, skipped: { user_erased: 2 } });
    for (const id of ids.get("only")!) expect(fakes.tiktok.accepted.has(id)).toBe(false);
  });
});

describe("dead letters and replay", () => {
  test("a replay after the deletion sends only the other users' events", async () => {
    const t = await createTenant(stack.db);
    const admin = (await addApiKey(stack.db, t.orgId, "admin")).secret;
    await addDestinations(stack.db, t, fakes, { tiktok: {} });
    fakes.tiktok.failAlways({ kind: "status", status: 400 });
    const ids = await ingest(t, ["keep", "erase"], 2);
    await waitFor(async () => {
      const row = await stack.db
        .selectFrom("relay_dead_letters")
        .select("batch_id")
        .where("project_id", "=", t.projectId)
        .executeTakeFirst();
      return row ?? undefined;
    });
    fakes.tiktok.failAlways(null);
    await deleteUser(t, admin, "erase");
    const replay = await stack.api(`/v1/projects/${t.projectId}/destinations/tiktok/dead-letters/replay`, {
      method: "POST",
      headers: bearer(admin),
    });
    expect(replay.status).toBe(200);
    expect(await replay.json()).toMatchObject({ replayed: 1 });
    await waitFor(async () =>
      ids.get("keep")!.every((id) => fakes.tiktok.accepted.has(id)) ? true : undefined,
    );
    for (const id of ids.get("erase")!) expect(fakes.tiktok.accepted.has(id)).toBe(false);
  });

  test("a dead letter stored after the user's deletion request leaves the user's events out", async () => {
    const t = await createTenant(stack.db);
    const admin = (await addApiKey(stack.db, t.orgId, "admin")).secret;
    const received = new Date(Date.now() - 60_000).toISOString();
    await persistEvents(
      consumerDb,
      eventsMessage(
        t,
        [
          queuedEvent({ eventId: "dl-keep", userId: "keep" }),
          queuedEvent({ eventId: "dl-erase", userId: "erase" }),
        ],
        { receivedAt: received },
      ),
    );
    await deleteUser(t, admin, "erase");
    const message: RelayMessage = {
      v: 1,
      batchId: `rb_${t.projectId.slice(-10)}dl`,
      orgId: t.orgId,
      projectId: t.projectId,
      destination: "tiktok",
      enqueuedAt: received,
      receivedAt: received,
      events: [
        relayEvent({
          eventId: "dl-keep",
          userId: "keep",
          country: "US",
          properties: { value: 1, currency: "USD" },
        }),
        relayEvent({
          eventId: "dl-erase",
          userId: "erase",
          country: "US",
          properties: { value: 1, currency: "USD" },
        }),
      ],
    };
    await relayDeadLetter(relayDb, message, new Date());
    const stored = await stack.db
      .selectFrom("relay_dead_letters")
      .select("events")
      .where("batch_id", "=", message.batchId)
      .executeTakeFirstOrThrow();
    expect((stored.events as RelayEvent[]).map((e) => e.eventId)).toEqual(["dl-keep"]);
    // Every dead letter is listed by the API, whatever failed: the batch never had a delivery row before.
    const rows = await deliveryRows(t, "tiktok", admin);
    expect(rows).toMatchObject([{ id: message.batchId, status: "dead_lettered", eventCount: 2 }]);
  });
});

describe("Apple Search Ads", () => {
  test("a user erased while AdServices answers gets no attribution record; without the deletion one is stored", async () => {
    for (const erase of [false, true]) {
      const t = await createTenant(stack.db);
      await addDestinations(stack.db, t, fakes, { apple: true });
      const token = `adtok-${t.projectId}-${erase}`;
      fakes.apple.tokens.set(token, { record: { attribution: true, orgId: 1, campaignId: 7 } });
      const received = new Date().toISOString();
      await persistEvents(
        consumerDb,
        eventsMessage(t, [queuedEvent({ eventId: "install-1", userId: "ios-user" })], {
          receivedAt: received,
        }),
      );
      const deps = {
        ...defaultSendDeps,
        // The deletion request lands while the platform call is in flight.
        fetch: async (url: string, init: RequestInit) => {
          if (erase) {
            const admin = (await addApiKey(stack.db, t.orgId, "admin")).secret;
            await deleteUser(t, admin, "ios-user");
          }
          return fetch(url, init);
        },
      };
      const decision = await relayBatch(
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
          deps,
          retryBaseSeconds: 0,
          retryMaxSeconds: 0,
        },
        {
          v: 1,
          batchId: `rb_${t.projectId.slice(-10)}ap`,
          orgId: t.orgId,
          projectId: t.projectId,
          destination: "apple-search-ads",
          enqueuedAt: received,
          receivedAt: received,
          events: [
            {
              ...relayEvent({
                eventId: "install-1",
                userId: "ios-user",
                country: "US",
                properties: { value: 1, currency: "USD" },
              }),
              adServicesToken: token,
            },
          ],
        },
        1,
      );
      expect(decision.kind).toBe("ack");
      const records = await stack.db
        .selectFrom("apple_attributions")
        .select("user_id")
        .where("project_id", "=", t.projectId)
        .execute();
      expect(records.length, erase ? "erased" : "kept").toBe(erase ? 0 : 1);
    }
  });
});

describe("failures on our side are listed too", () => {
  test("a token the relay cannot decrypt: retrying rows say why, then the dead letter is listed", async () => {
    const t = await createTenant(stack.db);
    const admin = (await addApiKey(stack.db, t.orgId, "admin")).secret;
    // Written under a key the relay's keyring does not hold (as after a rotation that dropped it too soon).
    const foreign = parseKeyring({
      DESTINATION_KEYS: JSON.stringify({ gone: "Z29uZS1rZXktZ29uZS1rZXktZ29uZS1rZXktMDAwMDA=" }),
      DESTINATION_KEY_ID: "gone",
    });
    await withTenant(stack.db, t.orgId, (tx) =>
      putDestination(
        tx,
        t.orgId,
        t.projectId,
        {
          kind: "tiktok",
          enabled: true,
          pixelCode: "PXFOREIGN01",
          accessToken: "tt-foreign-token-0001",
          testEventCode: null,
        },
        foreign,
        new Date(),
      ),
    );
    await ingest(t, ["u"], 1);
    const retrying = await waitFor(async () => {
      const rows = await deliveryRows(t, "tiktok", admin);
      return rows[0] ? rows[0] : undefined;
    });
    expect(String(retrying.error)).toContain("cannot be decrypted");
    const dead = await waitFor(async () => {
      const res = await stack.api(
        `/v1/projects/${t.projectId}/destinations/tiktok/deliveries?status=dead_lettered`,
        { headers: bearer(admin) },
      );
      const body = (await res.json()) as { data: Record<string, unknown>[] };
      return body.data[0];
    }, 60_000);
    expect(dead).toMatchObject({ status: "dead_lettered", eventCount: 1 });
    const letter = await stack.db
      .selectFrom("relay_dead_letters")
      .select("reason")
      .where("project_id", "=", t.projectId)
      .executeTakeFirstOrThrow();
    expect(letter.reason).toBe("max_attempts");
  });
});
