import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { persistEvents } from "../../../functions/events/persistEvents";
import type { RelayQueue } from "../../../functions/relay/enqueueRelays";
import { relayInsertedEvents } from "../../../functions/relay/relayInserted";
import { withTenant } from "../../../shared/db";
import type { RelayMessage } from "../../../shared/schemas/relay";
import { addApiKey, bearer } from "../../support/apiTenant";
import { addDestinations } from "../../support/destinations";
import { type FakePlatforms, startFakePlatforms } from "../../support/fakePlatforms";
import { eventsMessage, queuedEvent } from "../../support/messages";
import { sha256 } from "../../support/sha256";
import { type Stack, startStack, waitFor } from "../../support/stack";
import { createTenant, type TestTenant } from "../../support/tenant";
import { browserHeaders, PAGE_URL } from "../../support/web";

// The relay path end to end: SDK → ingest → consumer → relay queue → relay Worker → (fake) Meta and TikTok,
// with the payloads checked field by field against what the platforms document.

let stack: Stack;
let fakes: FakePlatforms;

beforeAll(async () => {
  fakes = await startFakePlatforms();
  stack = await startStack({ relayVars: fakes.vars });
});
afterAll(async () => {
  await stack?.dispose();
  await fakes?.close();
});

const ios = {
  os: "iOS",
  osVersion: "18.1",
  model: "iPhone16,2",
  idfa: "6D92078A-8246-4BA4-AE5B-76104861E7DC",
};
const IOS_UA = "Layers/1.0 (iPhone; iOS 18.1; Scale/3.00)";

describe("relay to Meta and TikTok", () => {
  test("an app purchase reaches both platforms once, hashed by each platform's rules", async () => {
    const t = await createTenant(stack.db);
    const { metaToken, tiktokToken } = await addDestinations(stack.db, t, fakes, {
      meta: { sendDeviceIds: true },
      tiktok: {},
    });
    const id = `buy-${t.projectId}`;
    const response = await stack.ingest(
      {
        events: [
          {
            eventId: id,
            name: "purchase",
            userId: "user-42",
            appId: "com.example.shop",
            email: "  Jane.Doe@Example.COM ",
            phone: "+49 (170) 123-4567",
            device: ios,
            consent: { ads: true },
            properties: { value: 19.99, currency: "eur", content_ids: ["sku-1", "sku-2"], order_id: "o-1" },
          },
        ],
      },
      { key: t.sdkKey, headers: { "User-Agent": IOS_UA } },
    );
    expect(response.status).toBe(202);

    const meta = await waitFor(async () => fakes.meta.accepted.get(id));
    expect(meta).toMatchObject({
      event_name: "layers_purchase",
      event_id: id,
      action_source: "app",
      user_data: {
        em: [sha256("jane.doe@example.com")],
        ph: [sha256("491701234567")],
        external_id: [sha256("user-42")],
        country: [sha256("de")],
        madid: ios.idfa,
      },
      custom_data: { value: 19.99, currency: "EUR", content_ids: ["sku-1", "sku-2"], order_id: "o-1" },
      app_data: { advertiser_tracking_enabled: 1, application_tracking_enabled: 1 },
    });
    expect(Number.isInteger(meta.event_time)).toBe(true);
    expect(Math.abs((meta.event_time as number) - Date.now() / 1000)).toBeLessThan(600);
    const extinfo = (meta.app_data as { extinfo: string[] }).extinfo;
    expect(extinfo).toHaveLength(16);
    expect(extinfo.slice(0, 6)).toEqual(["i2", "com.example.shop", "", "", "18.1", "iPhone16,2"]);
    // Neither the IP nor the User-Agent is relayed.
    const userData = meta.user_data as Record<string, unknown>;
    expect(userData.client_ip_address).toBeUndefined();
    expect(userData.client_user_agent).toBeUndefined();
    expect(fakes.meta.requests.some((r) => r.body.includes(IOS_UA))).toBe(false);

    const tiktok = await waitFor(async () => fakes.tiktok.accepted.get(id));
    expect(tiktok).toMatchObject({
      event: "CompletePayment",
      event_id: id,
      user: {
        email: sha256("jane.doe@example.com"),
        phone: sha256("+491701234567"),
        external_id: sha256("user-42"),
      },
      properties: {
        value: 19.99,
        currency: "EUR",
        contents: [{ content_id: "sku-1" }, { content_id: "sku-2" }],
      },
    });
    expect(JSON.stringify(tiktok)).not.toContain(ios.idfa);

    // The token went in the request (body for Meta, header for TikTok), never in a URL.
    const metaRequest = fakes.meta.requests.find((r) => r.body.includes(id));
    expect(JSON.parse(metaRequest?.body ?? "{}").access_token).toBe(metaToken);
    expect(metaRequest?.path).not.toContain(metaToken);
    const tiktokRequest = fakes.tiktok.requests.find((r) => r.body.includes(id));
    expect(tiktokRequest?.headers["access-token"]).toBe(tiktokToken);
    expect(JSON.parse(tiktokRequest?.body ?? "{}")).toMatchObject({ event_source: "web" });
    expect(fakes.meta.received.get(id)).toBe(1);
    expect(fakes.tiktok.received.get(id)).toBe(1);
  });

  test("consent refused, events Meta would refuse, non-standard events: left out per event, the rest sent", async () => {
    const t = await createTenant(stack.db);
    await addDestinations(stack.db, t, fakes, { meta: {}, tiktok: {} });
    const p = t.projectId;
    const old = new Date(Date.now() - 8 * 86_400_000).toISOString();
    const pageUrl = PAGE_URL;
    const response = await stack.ingest(
      {
        events: [
          { eventId: `ok-${p}`, name: "add_to_cart", userId: "u1", pageUrl },
          { eventId: `noconsent-${p}`, name: "purchase", userId: "u1", pageUrl, consent: { ads: false } },
          { eventId: `custom-${p}`, name: "level_up", userId: "u1", pageUrl },
          { eventId: `old-${p}`, name: "purchase", userId: "u1", pageUrl, timestamp: old },
          { eventId: `anon-${p}`, name: "purchase", pageUrl },
          // The partner did not enable device ids for Meta here: the IDFA stays behind.
          {
            eventId: `idfa-${p}`,
            name: "purchase",
            userId: "u2",
            pageUrl,
            device: { os: "iOS", idfa: "IDFA-NOT-ENABLED" },
          },
        ],
      },
      { key: t.sdkKey, headers: browserHeaders },
    );
    expect(response.status).toBe(202);
    await waitFor(async () => (fakes.meta.accepted.has(`custom-${p}`) ? true : undefined));
    await waitFor(async () => (fakes.tiktok.accepted.has(`old-${p}`) ? true : undefined));
    // Meta: the custom event goes as layers_level_up; the 8-day-old one and the anonymous one do not.
    expect(fakes.meta.accepted.get(`custom-${p}`)?.event_name).toBe("layers_level_up");
    expect(fakes.meta.accepted.get(`ok-${p}`)?.action_source).toBe("website");
    expect(fakes.meta.accepted.has(`old-${p}`)).toBe(false);
    expect(fakes.meta.accepted.has(`anon-${p}`)).toBe(false);
    expect((fakes.meta.accepted.get(`idfa-${p}`)?.user_data as { madid?: string }).madid).toBeUndefined();
    // TikTok: standard events only (level_up is not one); no 7-day rule there.
    expect(fakes.tiktok.accepted.get(`ok-${p}`)?.event).toBe("AddToCart");
    expect(fakes.tiktok.accepted.has(`custom-${p}`)).toBe(false);
    // Ads consent refused: relayed nowhere.
    for (const f of [fakes.meta, fakes.tiktok]) {
      expect([...f.requests].some((r) => r.body.includes(`noconsent-${p}`))).toBe(false);
    }

    const key = await addApiKey(stack.db, t.orgId, "read_only");
    const log = await waitFor(async () => {
      const res = await stack.api(`/v1/projects/${p}/destinations/meta/deliveries`, {
        headers: bearer(key.secret),
      });
      const body = (await res.json()) as { data: { status: string }[] };
      return body.data.length > 0 ? body : undefined;
    });
    expect(log.data).toEqual([
      expect.objectContaining({
        object: "relay_delivery",
        destination: "meta",
        status: "delivered",
        eventCount: 5,
        sentCount: 3,
        skipped: { too_old: 1, no_customer_information: 1 },
        attempts: 1,
        responseCode: 200,
        error: null,
      }),
    ]);
    const tiktokLog = (await (
      await stack.api(`/v1/projects/${p}/destinations/tiktok/deliveries`, { headers: bearer(key.secret) })
    ).json()) as { data: unknown[] };
    expect(tiktokLog.data).toEqual([
      expect.objectContaining({ status: "delivered", eventCount: 5, sentCount: 3 }),
    ]);
  });

  test("a token that cannot be decrypted holds back only its own destination; the others still deliver", async () => {
    const t = await createTenant(stack.db);
    await addDestinations(stack.db, t, fakes, { meta: {}, tiktok: {} });
    // As if its key had been removed from DESTINATION_KEYS before the re-encryption ran.
    await stack.db
      .updateTable("destinations")
      .set({ token_key_id: "removed-key" })
      .where("project_id", "=", t.projectId)
      .where("kind", "=", "tiktok")
      .execute();
    const id = `undecryptable-${t.projectId}`;
    const response = await stack.ingest(
      {
        events: [{ eventId: id, name: "purchase", userId: "u-1", email: "a@example.com", pageUrl: PAGE_URL }],
      },
      { key: t.sdkKey, headers: browserHeaders },
    );
    expect(response.status).toBe(202);
    await waitFor(async () => fakes.meta.accepted.get(id));
    await waitFor(async () =>
      stack.logs.some((l) => l.includes("relay batch failed on our side") && l.includes(t.projectId))
        ? true
        : undefined,
    );
    expect(fakes.tiktok.received.get(id)).toBeUndefined();
    expect(fakes.meta.received.get(id)).toBe(1);
  });

  test("a disabled destination and a redelivered events message relay nothing more", async () => {
    const t = await createTenant(stack.db);
    await addDestinations(stack.db, t, fakes, { meta: {}, tiktok: { enabled: false } });
    const batch = {
      events: [{ eventId: `dup-${t.projectId}`, name: "purchase", userId: "u", pageUrl: PAGE_URL }],
    };
    const init = { key: t.sdkKey, headers: browserHeaders };
    expect((await stack.ingest(batch, init)).status).toBe(202);
    await waitFor(async () => (fakes.meta.accepted.has(`dup-${t.projectId}`) ? true : undefined));
    expect((await stack.ingest(batch, init)).status).toBe(202);
    await waitFor(async () =>
      stack.logs.filter((l) => l.includes(t.projectId) && l.includes('"inserted":0')).length
        ? true
        : undefined,
    );
    // A later event of the project reaching Meta means the duplicate's turn has passed.
    await sentinel(t);
    expect(fakes.meta.received.get(`dup-${t.projectId}`)).toBe(1);
    expect(fakes.tiktok.requests.some((r) => r.body.includes(t.projectId.slice(-10)))).toBe(false);
  });

  test("a redelivered events message (attempts > 1) relays its stored events, never a user suppressed meanwhile", async () => {
    // The consumer's steps, run as it runs them: a first attempt stored the events and then failed to
    // enqueue; before the redelivery the user "sam" is suppressed. The retry must relay the already-stored
    // event of "ann" (nothing lost) and must not send sam's event to any platform.
    const t = await createTenant(stack.db);
    const message = eventsMessage(t, [
      queuedEvent({ eventId: "ann-1", userId: "ann", consentAds: true }),
      queuedEvent({ eventId: "sam-1", userId: "sam", consentAds: true }),
    ]);
    const first = await persistEvents(stack.db, message);
    expect(first.insertedEventIds.sort()).toEqual(["ann-1", "sam-1"]);
    await withTenant(stack.db, t.orgId, (tx) =>
      tx
        .insertInto("suppressions")
        .values({
          org_id: t.orgId,
          project_id: t.projectId,
          identifier_type: "user_id",
          identifier_sha256: sha256("sam"),
          deletion_request_id: null,
          created_at: new Date(),
        })
        .execute(),
    );
    const again = await persistEvents(stack.db, message);
    expect(again).toMatchObject({ inserted: 0, erased: 1, keptEventIds: ["ann-1"] });
    const sent: RelayMessage[] = [];
    const queue: RelayQueue = {
      async sendBatch(messages) {
        for (const m of messages) sent.push(m.body);
      },
    };
    await relayInsertedEvents(queue, [{ kind: "meta", sendDeviceIds: false }], message, again, 2);
    expect(sent.flatMap((m) => m.events.map((e) => e.eventId))).toEqual(["ann-1"]);
  });
});

describe("delivery log", () => {
  test("delivery log and dead letters kept 30 days: the Cron purge removes older rows, keeps newer ones", async () => {
    const t = await createTenant(stack.db);
    const now = new Date("2031-05-01T00:00:00Z");
    const row = (batchId: string, daysAgo: number) => {
      const at = new Date(now.getTime() - daysAgo * 86_400_000);
      return {
        org_id: t.orgId,
        project_id: t.projectId,
        batch_id: batchId,
        destination: "meta" as const,
        event_count: 1,
        sent_count: 1,
        skipped: "{}",
        status: "delivered" as const,
        attempts: 1,
        response_code: 200,
        error: null,
        first_attempt_at: at,
        last_attempt_at: at,
      };
    };
    await stack.db
      .insertInto("relay_deliveries")
      .values([row(`old-${t.projectId}`, 31), row(`new-${t.projectId}`, 29)])
      .execute();
    const letter = (batchId: string, daysAgo: number) => ({
      org_id: t.orgId,
      project_id: t.projectId,
      batch_id: batchId,
      destination: "meta" as const,
      reason: "rejected" as const,
      response_code: 400,
      error: null,
      events: "[]",
      dead_at: new Date(now.getTime() - daysAgo * 86_400_000),
      replayed_at: null,
    });
    await stack.db
      .insertInto("relay_dead_letters")
      .values([letter(`old-${t.projectId}`, 31), letter(`new-${t.projectId}`, 29)])
      .execute();
    await stack.cron(now);
    // The run's other jobs are not this test's business; the relay's purge must have run and succeeded.
    expect(stack.logs.some((l) => l.includes("cron job done") && l.includes("relay-deliveries-purge"))).toBe(
      true,
    );
    const left = await stack.db
      .selectFrom("relay_deliveries")
      .select("batch_id")
      .where("project_id", "=", t.projectId)
      .execute();
    expect(left).toEqual([{ batch_id: `new-${t.projectId}` }]);
    const letters = await stack.db
      .selectFrom("relay_dead_letters")
      .select("batch_id")
      .where("project_id", "=", t.projectId)
      .execute();
    expect(letters).toEqual([{ batch_id: `new-${t.projectId}` }]);
  });

  test("another org's project is 404; an unknown destination kind is 400", async () => {
    const t = await createTenant(stack.db);
    const other = await createTenant(stack.db);
    const key = await addApiKey(stack.db, other.orgId, "owner");
    const res = await stack.api(`/v1/projects/${t.projectId}/destinations/meta/deliveries`, {
      headers: bearer(key.secret),
    });
    expect(res.status).toBe(404);
    const replay = await stack.api(`/v1/projects/${t.projectId}/destinations/meta/dead-letters/replay`, {
      method: "POST",
      headers: bearer(key.secret),
    });
    expect(replay.status).toBe(404);
    const bad = await stack.api(`/v1/projects/${other.projectId}/destinations/snapchat/deliveries`, {
      headers: bearer(key.secret),
    });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: { code: string } }).error.code).toBe("invalid_request");
  });

  test("replaying dead letters sends data to a platform: admin only (developer and read-only 403, nothing queued)", async () => {
    const t = await createTenant(stack.db);
    await addDestinations(stack.db, t, fakes, { meta: {} });
    const eventId = `dl-${t.projectId}`;
    await stack.db
      .insertInto("relay_dead_letters")
      .values({
        org_id: t.orgId,
        project_id: t.projectId,
        batch_id: `rb-${t.projectId}`,
        destination: "meta",
        reason: "rejected",
        response_code: 400,
        error: null,
        events: JSON.stringify([
          {
            // An app event: a website event's dead letter has lost its User-Agent (never stored), so
            // Meta would skip it on replay (relay.metaWeb.test.ts).
            eventId,
            name: "purchase",
            userId: "u1",
            timestamp: new Date().toISOString(),
            appId: "com.example.shop",
            os: "iOS",
            osVersion: null,
            deviceModel: null,
            browser: null,
            country: null,
            emailSha256: sha256("dl@example.com"),
            phoneSha256: null,
            phoneE164Sha256: null,
            properties: { value: 5, currency: "USD" },
            consentAds: true,
          },
        ]),
        dead_at: new Date(),
        replayed_at: null,
      })
      .execute();
    const replay = (secret: string) =>
      stack.api(`/v1/projects/${t.projectId}/destinations/meta/dead-letters/replay`, {
        method: "POST",
        headers: bearer(secret),
      });
    for (const role of ["read_only", "developer"] as const) {
      const res = await replay((await addApiKey(stack.db, t.orgId, role)).secret);
      expect(res.status).toBe(403);
    }
    // Refused before anything ran: a later event of the project reaches Meta, the dead letter's does not.
    await sentinel(t);
    expect(fakes.meta.received.has(eventId)).toBe(false);
    const pending = await stack.db
      .selectFrom("relay_dead_letters")
      .select("replayed_at")
      .where("project_id", "=", t.projectId)
      .execute();
    expect(pending).toEqual([{ replayed_at: null }]);

    const admin = await replay((await addApiKey(stack.db, t.orgId, "admin")).secret);
    expect(admin.status).toBe(200);
    expect(await admin.json()).toEqual({ object: "relay_replay", replayed: 1, hasMore: false });
    await waitFor(async () => (fakes.meta.accepted.has(eventId) ? true : undefined));
  });
});

/** Sends one more website event of the project through the whole path and waits until Meta has it. */
async function sentinel(t: TestTenant): Promise<void> {
  const eventId = `sentinel-${t.projectId}-${Date.now()}`;
  const res = await stack.ingest(
    { events: [{ eventId, name: "purchase", userId: "sentinel", pageUrl: PAGE_URL }] },
    { key: t.sdkKey, headers: browserHeaders },
  );
  expect(res.status).toBe(202);
  await waitFor(async () => (fakes.meta.accepted.has(eventId) ? true : undefined));
}
