import { sql } from "kysely";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import type { RelayEvent, RelayMessage } from "../../../shared/schemas/relay";
import { addApiKey, bearer } from "../../support/apiTenant";
import { addDestinations } from "../../support/destinations";
import { type FakePlatforms, startFakePlatforms } from "../../support/fakePlatforms";
import { type Stack, startStack, waitFor } from "../../support/stack";
import { createTenant, type TestTenant } from "../../support/tenant";

// Apple Search Ads: the relay Worker exchanges AdServices tokens for attribution records and stores them on
// the user. Apple's 404 ("not ready") is retried every APPLE_NOT_FOUND_RETRY_MS (5 s in production, 50 ms
// in this stack) up to 3 times; 400 (invalid token) is recorded and never retried.
// Messages are put on the relay queue directly, as the consumer does.

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

const RECORD = {
  attribution: true,
  orgId: 40669820,
  campaignId: 542370539,
  conversionType: "Download",
  claimType: "Click",
  adGroupId: 542317095,
  countryOrRegion: "US",
  keywordId: 87675432,
  adId: 542317136,
};

function event(eventId: string, userId: string | null, adServicesToken?: string): RelayEvent {
  return {
    eventId,
    name: "app_install",
    userId,
    timestamp: new Date().toISOString(),
    appId: "com.example.app",
    os: "iOS",
    osVersion: "18.1",
    deviceModel: null,
    browser: null,
    country: "US",
    emailSha256: null,
    phoneSha256: null,
    phoneE164Sha256: null,
    properties: {},
    consentAds: true,
    ...(adServicesToken && { adServicesToken }),
  };
}

async function relay(t: TestTenant, events: RelayEvent[]): Promise<string> {
  const queue = await stack.mf.getQueueProducer<RelayMessage>("RELAY_QUEUE", "consumer");
  const batchId = `rb_${t.projectId.slice(-12)}${events.length}`;
  await queue.send(
    {
      v: 1,
      batchId,
      orgId: t.orgId,
      projectId: t.projectId,
      destination: "apple-search-ads",
      enqueuedAt: new Date().toISOString(),
      events,
    },
    { contentType: "json" },
  );
  return batchId;
}

async function delivery(t: TestTenant) {
  const key = await addApiKey(stack.db, t.orgId, "read_only");
  return waitFor(async () => {
    const res = await stack.api(`/v1/projects/${t.projectId}/destinations/apple-search-ads/deliveries`, {
      headers: bearer(key.secret),
    });
    const body = (await res.json()) as { data: Record<string, unknown>[] };
    return body.data[0]?.status === "delivered" ? body.data[0] : undefined;
  });
}

function calls(token: string) {
  return fakes.apple.requests.filter((r) => r.body === token).map((r) => r.status);
}

describe("Apple Search Ads attribution", () => {
  test("from the SDK: an event's adServicesToken reaches AdServices through ingest, consumer and relay; it is in no table", async () => {
    const t = await createTenant(stack.db);
    await addDestinations(stack.db, t, fakes, { apple: true });
    const p = t.projectId.slice(-10);
    const token = `tok-sdk-${p}-${"A".repeat(600)}`;
    const refused = `tok-refused-${p}`;
    fakes.apple.tokens.set(token, { record: RECORD });
    fakes.apple.tokens.set(refused, { record: RECORD });
    const res = await stack.ingest(
      {
        events: [
          { eventId: "install-1", name: "app_install", userId: "frank", adServicesToken: token },
          // Refused ads consent: the token never leaves the edge.
          {
            eventId: "install-2",
            name: "app_install",
            userId: "gina",
            adServicesToken: refused,
            consent: { ads: false },
          },
        ],
      },
      { key: t.sdkKey },
    );
    expect(res.status).toBe(202);
    await delivery(t);
    expect(calls(token)).toEqual([200]);
    expect(calls(refused)).toEqual([]);
    const stored = await stack.db
      .selectFrom("apple_attributions")
      .select(["user_id", "event_id", "campaign_id"])
      .where("project_id", "=", t.projectId)
      .execute();
    expect(stored).toEqual([{ user_id: "frank", event_id: "install-1", campaign_id: "542370539" }]);

    // The token is a credential: no column of any table holds it, no log line either.
    const { rows: tables } = await sql<{ table_name: string }>`
      select table_name from information_schema.tables
      where table_schema = 'public' and table_type = 'BASE TABLE'`.execute(stack.db);
    for (const { table_name } of tables) {
      const { rows } = await sql<{
        row: string;
      }>`select t::text as row from ${sql.table(table_name)} as t`.execute(stack.db);
      for (const { row } of rows) expect(row, table_name).not.toContain(`tok-sdk-${p}`);
    }
    expect(stack.logs.join("\n")).not.toContain(`tok-sdk-${p}`);
  });

  test("an adServicesToken longer than 4,096 characters is refused at ingest (invalid_event, the field named)", async () => {
    const t = await createTenant(stack.db);
    const res = await stack.ingest(
      { events: [{ eventId: "x", name: "app_install", userId: "u", adServicesToken: "A".repeat(4097) }] },
      { key: t.sdkKey },
    );
    expect(res.status).toBe(400);
    const body = (await res.json()) as {
      error: { code: string; details: { rejected: { index: number; code: string; message?: string }[] } };
    };
    expect(body.error.code).toBe("invalid_events");
    expect(body.error.details.rejected).toMatchObject([{ index: 0, code: "invalid_event" }]);
    expect(JSON.stringify(body.error.details.rejected)).toContain("adServicesToken");
  });

  test("200 stores the record on the user; 404 is retried (then found, or given up after 3); 400 is not retried", async () => {
    const t = await createTenant(stack.db);
    await addDestinations(stack.db, t, fakes, { apple: true });
    const p = t.projectId.slice(-10);
    const tokens = { ok: `tok-ok-${p}`, late: `tok-late-${p}`, never: `tok-never-${p}`, bad: `tok-bad-${p}` };
    fakes.apple.tokens.set(tokens.ok, { record: RECORD });
    fakes.apple.tokens.set(tokens.late, { notFoundTimes: 2, record: { ...RECORD, adId: 7 } });
    fakes.apple.tokens.set(tokens.never, { notFoundTimes: 10, record: RECORD });
    await relay(t, [
      event("e1", "alice", tokens.ok),
      event("e2", "bob", tokens.late),
      event("e3", "carol", tokens.never),
      event("e4", "dave", tokens.bad),
      event("e5", null, `tok-anon-${p}`),
    ]);
    const row = await delivery(t);
    expect(row).toMatchObject({
      eventCount: 5,
      sentCount: 2,
      skipped: { attribution_not_found: 1, attribution_token_invalid: 1, no_user_id: 1 },
      attempts: 1,
    });
    expect(calls(tokens.ok)).toEqual([200]);
    expect(calls(tokens.late)).toEqual([404, 404, 200]);
    expect(calls(tokens.never)).toEqual([404, 404, 404, 404]);
    expect(calls(tokens.bad)).toEqual([400]);

    const stored = await stack.db
      .selectFrom("apple_attributions")
      .selectAll()
      .where("project_id", "=", t.projectId)
      .orderBy("user_id")
      .execute();
    expect(stored.map((r) => r.user_id)).toEqual(["alice", "bob"]);
    expect(stored[0]).toMatchObject({
      event_id: "e1",
      attribution: true,
      apple_org_id: "40669820",
      campaign_id: "542370539",
      ad_group_id: "542317095",
      keyword_id: "87675432",
      ad_id: "542317136",
      claim_type: "Click",
      conversion_type: "Download",
      country_or_region: "US",
    });
    expect(stored[1]?.ad_id).toBe("7");
    // The tokens are credentials: in no table row, no log line.
    const everything = JSON.stringify(stored) + stack.logs.join("\n");
    for (const token of Object.values(tokens)) expect(everything).not.toContain(token);
  });

  test("Apple answering 500: the batch retries and the record is stored once", async () => {
    const t = await createTenant(stack.db);
    await addDestinations(stack.db, t, fakes, { apple: true });
    const token = `tok-500-${t.projectId.slice(-10)}`;
    fakes.apple.tokens.set(token, { record: { attribution: false } });
    fakes.apple.failNext(1, { kind: "status", status: 500 });
    await relay(t, [event("e1", "erin", token)]);
    const row = await delivery(t);
    expect(row).toMatchObject({ attempts: 2, sentCount: 1 });
    expect(calls(token)).toEqual([500, 200]);
    const stored = await stack.db
      .selectFrom("apple_attributions")
      .select(["user_id", "attribution", "campaign_id"])
      .where("project_id", "=", t.projectId)
      .execute();
    expect(stored).toEqual([{ user_id: "erin", attribution: false, campaign_id: null }]);
  });
});
