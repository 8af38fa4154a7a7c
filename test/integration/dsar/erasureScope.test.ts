import { afterAll, beforeAll, expect, test } from "vitest";
import { hashEmail, hashPhone } from "../../../shared/pii";
import type { RelayEvent } from "../../../shared/schemas/relay";
import { type Stack, startStack } from "../../support/stack";
import { createTenant, type TestTenant } from "../../support/tenant";
import { call, ownerKey, runCron } from "./helpers";

// A deletion reaches every table that holds a user's data, not only the event store: the Apple Search Ads
// attribution record and the relay dead letters (batches kept for replay, which hold the queued events).
// The access endpoint shows the attribution too, so access covers what a deletion removes.

let stack: Stack;
beforeAll(async () => {
  stack = await startStack({ consumer: "recorder" });
});
afterAll(() => stack?.dispose());

function relayEvent(overrides: Partial<RelayEvent> & Pick<RelayEvent, "eventId">): RelayEvent {
  return {
    name: "purchase",
    userId: null,
    timestamp: new Date().toISOString(),
    appId: null,
    os: "iOS",
    osVersion: "17.4",
    deviceModel: null,
    browser: null,
    country: "GB",
    emailSha256: null,
    phoneSha256: null,
    phoneE164Sha256: null,
    properties: {},
    consentAds: true,
    ...overrides,
  };
}

async function seedAttribution(t: TestTenant, userId: string, campaignId: number) {
  // An attribution is stored for a user whose events were stored (retention drops one without state).
  const seen = new Date("2026-11-01T10:00:00.000Z");
  await stack.db
    .insertInto("sdk_users")
    .values({
      org_id: t.orgId,
      project_id: t.projectId,
      user_id: userId,
      properties: "{}",
      property_times: "{}",
      first_seen_at: seen,
      last_seen_at: seen,
    })
    .execute();
  await stack.db
    .insertInto("apple_attributions")
    .values({
      org_id: t.orgId,
      project_id: t.projectId,
      user_id: userId,
      event_id: `install-${userId}`,
      attribution: true,
      apple_org_id: 40669820,
      campaign_id: campaignId,
      ad_group_id: 542370539,
      keyword_id: 87675432,
      ad_id: 542317136,
      claim_type: "Click",
      conversion_type: "Download",
      country_or_region: "GB",
      attributed_at: new Date("2026-11-01T10:00:00.000Z"),
    })
    .execute();
}

async function seedDeadLetter(t: TestTenant, batchId: string, events: RelayEvent[]) {
  await stack.db
    .insertInto("relay_dead_letters")
    .values({
      org_id: t.orgId,
      project_id: t.projectId,
      batch_id: batchId,
      destination: "meta",
      reason: "rejected",
      response_code: 400,
      error: "invalid parameter",
      events: JSON.stringify(events),
      dead_at: new Date(),
    })
    .execute();
}

const deadLetterIds = async (t: TestTenant) =>
  (
    await stack.db
      .selectFrom("relay_dead_letters")
      .select("batch_id")
      .where("org_id", "=", t.orgId)
      .orderBy("batch_id")
      .execute()
  ).map((r) => r.batch_id);

const attributedUsers = async (t: TestTenant) =>
  (
    await stack.db
      .selectFrom("apple_attributions")
      .select("user_id")
      .where("org_id", "=", t.orgId)
      .orderBy("user_id")
      .execute()
  ).map((r) => r.user_id);

test("access shows the Apple attribution; deletion removes it and the dead letters holding the subject's events", async () => {
  const t = await createTenant(stack.db);
  const other = await createTenant(stack.db);
  const admin = await ownerKey(stack, t, "admin");
  const email = (await hashEmail("alice@example.com")) as string;
  const phone = (await hashPhone("+44 20 7946 0000")) as string;
  await seedAttribution(t, "alice", 111);
  await seedAttribution(t, "bob", 222);
  await seedAttribution(other, "alice", 333); // another org's user of the same id
  await seedDeadLetter(t, "b1-alice", [
    relayEvent({ eventId: "a1", userId: "alice" }),
    relayEvent({ eventId: "b1", userId: "bob" }),
  ]);
  await seedDeadLetter(t, "b2-email", [relayEvent({ eventId: "anon-1", emailSha256: email })]);
  await seedDeadLetter(t, "b3-phone", [relayEvent({ eventId: "anon-2", phoneSha256: phone })]);
  await seedDeadLetter(t, "b4-bob", [
    relayEvent({ eventId: "b2", userId: "bob", emailSha256: "f".repeat(64) }),
  ]);
  await seedDeadLetter(other, "b5-other", [
    relayEvent({ eventId: "a1", userId: "alice", emailSha256: email }),
  ]);

  const access = await call(stack, admin, "GET", `/v1/projects/${t.projectId}/events/users/alice`);
  expect(access.status).toBe(200);
  expect(access.body.appleAttribution).toEqual({
    object: "apple_attribution",
    eventId: "install-alice",
    attribution: true,
    orgId: 40669820,
    campaignId: 111,
    adGroupId: 542370539,
    keywordId: 87675432,
    adId: 542317136,
    claimType: "Click",
    conversionType: "Download",
    countryOrRegion: "GB",
    attributedAt: "2026-11-01T10:00:00.000Z",
  });
  const none = await call(stack, admin, "GET", `/v1/projects/${t.projectId}/events/users/nobody`);
  expect(none.body.appleAttribution).toBeNull();

  const created = await call(stack, admin, "POST", `/v1/projects/${t.projectId}/deletion-requests`, {
    userId: "alice",
    email: "Alice@Example.com",
    phone: "+44 20 7946 0000",
  });
  expect(created.status).toBe(202);
  expect(created.body.deleted).toEqual({
    events: 0,
    users: 0,
    attributions: 0,
    deadLetters: 0,
    deadLetteredEvents: 0,
  });
  await runCron(stack, new Date(Date.now() + 5 * 60_000));

  const receipt = await call(stack, admin, "GET", `/v1/deletion-requests/${created.body.id}`);
  expect(receipt.body).toMatchObject({
    status: "completed",
    deleted: { events: 0, users: 1, attributions: 1, deadLetters: 3 },
  });
  expect(await attributedUsers(t)).toEqual(["bob"]);
  expect(await deadLetterIds(t)).toEqual(["b4-bob"]);
  // Tenancy: the other org's rows for a user of the same id and hashes stay.
  expect(await attributedUsers(other)).toEqual(["alice"]);
  expect(await deadLetterIds(other)).toEqual(["b5-other"]);

  const after = await call(stack, admin, "GET", `/v1/projects/${t.projectId}/events/users/alice`);
  expect(after.body).toMatchObject({ user: null, appleAttribution: null, events: { data: [] } });
});
