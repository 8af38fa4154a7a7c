import { sql } from "kysely";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { addApiKey, bearer } from "../../support/apiTenant";
import { addDestinations } from "../../support/destinations";
import { type FakePlatforms, startFakePlatforms } from "../../support/fakePlatforms";
import { type Stack, startStack, waitFor } from "../../support/stack";
import { createTenant, type TestTenant } from "../../support/tenant";

// Meta website events end to end: SDK → ingest → consumer → relay → (fake) Meta, which refuses a website
// event without client_user_agent or event_source_url (and with it the whole request), as Meta does.
// The User-Agent rides the queues to Meta and is stored nowhere; the page URL leaves without its query.

const UA =
  "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15 LayersUaProbe/7.3";
const PAGE = "https://shop.example/checkout/done";
const PAGE_WITH_QUERY = `${PAGE}?email=jane.probe%40example.com&coupon=QUERYPROBE#thanks-fragment`;

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

interface DeliveryRow {
  status: string;
  event_count: number;
  sent_count: number;
  skipped: Record<string, number>;
}

/** The project's delivery-log rows for a destination, once `count` of them exist. */
async function deliveries(t: TestTenant, destination: string, count: number): Promise<DeliveryRow[]> {
  return waitFor(async () => {
    const rows = await stack.db
      .selectFrom("relay_deliveries")
      .select(["status", "event_count", "sent_count", "skipped"])
      .where("project_id", "=", t.projectId)
      .where("destination", "=", destination as "meta")
      .orderBy("event_count", "desc")
      .execute();
    return rows.length >= count && rows.every((r) => r.status !== "retrying")
      ? (rows as DeliveryRow[])
      : undefined;
  }, 30_000);
}

describe("Meta website events", () => {
  test("carry the request's User-Agent and the page URL without its query; events missing one are skipped, the rest sent", async () => {
    const t = await createTenant(stack.db);
    await addDestinations(stack.db, t, fakes, { meta: {}, tiktok: {} });
    const p = t.projectId;
    const fromBrowser = await stack.ingest(
      {
        events: [
          { eventId: `web-${p}`, name: "purchase", userId: "u1", pageUrl: PAGE_WITH_QUERY },
          // No pageUrl: the url property stands in, cut the same way.
          {
            eventId: `prop-${p}`,
            name: "add_to_cart",
            userId: "u1",
            properties: { url: "https://shop.example/cart?session=QUERYPROBE" },
          },
          // Neither: Meta would refuse it, and the whole request with it.
          { eventId: `nourl-${p}`, name: "purchase", userId: "u1" },
          { eventId: `refused-${p}`, name: "purchase", userId: "u1", pageUrl: PAGE, consent: { ads: false } },
        ],
      },
      { key: t.sdkKey, headers: { "User-Agent": UA } },
    );
    expect(fromBrowser.status).toBe(202);
    // A request without a User-Agent: nothing to send as client_user_agent.
    const withoutUa = await stack.ingest(
      { events: [{ eventId: `noua-${p}`, name: "purchase", userId: "u2", pageUrl: PAGE }] },
      { key: t.sdkKey, headers: { "User-Agent": "" } },
    );
    expect(withoutUa.status).toBe(202);

    const web = await waitFor(async () => fakes.meta.accepted.get(`web-${p}`));
    expect(web).toMatchObject({
      action_source: "website",
      event_source_url: PAGE,
      user_data: { client_user_agent: UA },
    });
    expect(fakes.meta.accepted.get(`prop-${p}`)).toMatchObject({
      event_source_url: "https://shop.example/cart",
      user_data: { client_user_agent: UA },
    });
    const metaLog = await deliveries(t, "meta", 2);
    expect(metaLog).toEqual([
      expect.objectContaining({
        status: "delivered",
        event_count: 3,
        sent_count: 2,
        skipped: { no_event_source_url: 1 },
      }),
      expect.objectContaining({
        status: "skipped",
        event_count: 1,
        sent_count: 0,
        skipped: { no_client_user_agent: 1 },
      }),
    ]);
    for (const id of [`nourl-${p}`, `noua-${p}`, `refused-${p}`])
      expect(fakes.meta.received.has(id)).toBe(false);

    // TikTok gets the page URL (cut the same way), never the User-Agent.
    await deliveries(t, "tiktok", 2);
    expect(fakes.tiktok.accepted.get(`web-${p}`)).toMatchObject({ page: { url: PAGE } });
    expect(fakes.tiktok.accepted.get(`noua-${p}`)).toMatchObject({ page: { url: PAGE } });
    const mine = (r: { body: string }) => r.body.includes(p.slice(-10));
    for (const r of fakes.tiktok.requests.filter(mine)) expect(r.body).not.toContain("LayersUaProbe");
    // No query string or fragment left us.
    for (const r of [...fakes.meta.requests, ...fakes.tiktok.requests].filter(mine)) {
      for (const gone of ["QUERYPROBE", "jane.probe", "thanks-fragment", "?"]) {
        expect(r.body.includes(gone), `${gone} in ${r.path}`).toBe(false);
      }
    }
  });

  test("a dead-lettered batch keeps no User-Agent or page URL; replayed, Meta's website event is skipped for the User-Agent", async () => {
    const t = await createTenant(stack.db);
    const wrongToken = `EAAwrong${t.projectId.slice(-8)}tokenvalue`;
    const { datasetId } = await addDestinations(stack.db, t, fakes, { meta: { token: wrongToken } });
    const eventId = `dead-${t.projectId}`;
    const response = await stack.ingest(
      { events: [{ eventId, name: "purchase", userId: "u3", pageUrl: PAGE_WITH_QUERY }] },
      { key: t.sdkKey, headers: { "User-Agent": UA } },
    );
    expect(response.status).toBe(202);
    const [rejected] = await deliveries(t, "meta", 1);
    expect(rejected).toMatchObject({ status: "rejected", event_count: 1 });
    const [letter] = await stack.db
      .selectFrom("relay_dead_letters")
      .select(["events"])
      .where("project_id", "=", t.projectId)
      .execute();
    const stored = (letter?.events as Record<string, unknown>[])[0] ?? {};
    expect(stored.eventId).toBe(eventId);
    expect(stored).not.toHaveProperty("userAgent");
    expect(stored).not.toHaveProperty("pageUrl");

    // The partner fixes the token and replays: the event has no User-Agent any more, so Meta's rule
    // leaves it out (recorded), instead of failing the call.
    fakes.meta.tokens.set(datasetId, wrongToken);
    const admin = await addApiKey(stack.db, t.orgId, "admin");
    const replay = await stack.api(`/v1/projects/${t.projectId}/destinations/meta/dead-letters/replay`, {
      method: "POST",
      headers: bearer(admin.secret),
    });
    expect(await replay.json()).toMatchObject({ replayed: 1 });
    const [replayed] = await waitFor(async () => {
      const rows = await deliveries(t, "meta", 1);
      return rows[0]?.status === "skipped" ? rows : undefined;
    });
    expect(replayed).toMatchObject({ sent_count: 0, skipped: { no_client_user_agent: 1 } });
    expect(fakes.meta.accepted.has(eventId)).toBe(false);
  });

  test("after those runs, the User-Agent and the page URL are in no table and no log line", async () => {
    const { rows: tables } = await sql<{ table_name: string }>`
      select table_name from information_schema.tables
      where table_schema = 'public' and table_type = 'BASE TABLE' order by table_name`.execute(stack.db);
    // The page URL is not stored either (sdk_events has no column for it, dead letters drop it); the
    // url property is stored as sent (it is the partner's property), so it is not looked for.
    const needles = [UA, "LayersUaProbe", PAGE, "checkout/done", "jane.probe", "thanks-fragment"];
    const leaks: string[] = [];
    let eventsSeen = 0;
    for (const { table_name } of tables) {
      const { rows } = await sql<{ row: string }>`
        select t::text as row from ${sql.table(table_name)} as t`.execute(stack.db);
      for (const { row } of rows) {
        if (table_name === "sdk_events") eventsSeen += 1;
        for (const needle of needles) if (row.includes(needle)) leaks.push(`${table_name}: ${needle}`);
      }
    }
    expect(eventsSeen).toBeGreaterThanOrEqual(6); // the scan saw the events it was looking through
    expect(leaks).toEqual([]);
    const logs = stack.logs.join("\n");
    expect(logs).toContain("relay batch done"); // the logs were captured
    for (const needle of needles) expect(logs, `log contains ${needle}`).not.toContain(needle);
  });
});
