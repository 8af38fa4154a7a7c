import { sql } from "kysely";
import { afterAll, beforeAll, expect, test } from "vitest";
import { addDestinations } from "../../support/destinations";
import { type FakePlatforms, startFakePlatforms } from "../../support/fakePlatforms";
import { waitForEvents } from "../../support/rows";
import { sha256 } from "../../support/sha256";
import { type Stack, startStack, waitFor } from "../../support/stack";
import { createTenant } from "../../support/tenant";
import { browserHeaders, PAGE_URL } from "../../support/web";

// The edge places a phone in a region (here the request's geo country, US) while it still has the number,
// and hashes its E.164 digits: "(650)555-1212" is +1 650 555 1212. Meta gets SHA-256 of "16505551212" (the
// stored phone_sha256 too: one number, one hash), TikTok SHA-256 of "+16505551212" — not "6505551212" or
// "+6505551212" (Singapore's +65), which a national number used to give. TikTok's hash rides the queues to
// the platform and is stored nowhere; no table or log holds any form of the raw number.

const RAW_PHONE = "(650)555-1212";
const STORED_HASH = sha256("16505551212");
const META_HASH = STORED_HASH;
const TIKTOK_HASH = sha256("+16505551212");

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

test("a US device's national number reaches Meta and TikTok as +1 650 555 1212; TikTok's hash and the raw number are stored nowhere", async () => {
  const t = await createTenant(stack.db);
  await addDestinations(stack.db, t, fakes, { meta: {}, tiktok: {} });
  const eventId = `phone-${t.projectId}`;
  const response = await stack.ingest(
    {
      events: [
        {
          eventId,
          name: "purchase",
          userId: "user-phone",
          phone: RAW_PHONE,
          consent: { ads: true },
          pageUrl: PAGE_URL,
        },
      ],
    },
    { key: t.sdkKey, headers: browserHeaders, cf: { country: "US", region: "California" } },
  );
  expect(response.status).toBe(202);

  // What each platform received: its own rule's hash.
  const meta = await waitFor(async () => fakes.meta.accepted.get(eventId), 30_000);
  expect(meta).toMatchObject({ user_data: { ph: [META_HASH] } });
  const tiktok = await waitFor(async () => fakes.tiktok.accepted.get(eventId), 30_000);
  expect(tiktok).toMatchObject({ user: { phone: TIKTOK_HASH } });
  const [stored] = await waitForEvents(stack.db, t.projectId, 1);
  expect(stored?.phone_sha256).toBe(STORED_HASH);
  // Let the relay finish its bookkeeping (delivery log) before scanning.
  await waitFor(async () => {
    const { rows } = await sql<{ n: string }>`
      select count(*) as n from information_schema.tables where table_name = 'relay_deliveries'`.execute(
      stack.db,
    );
    if (Number(rows[0]?.n) === 0) return true;
    const { rows: deliveries } = await sql<{ n: string }>`
      select count(*) as n from relay_deliveries where project_id = ${t.projectId}`.execute(stack.db);
    return Number(deliveries[0]?.n) >= 2 ? true : undefined;
  }, 30_000);

  const { rows: tables } = await sql<{ table_name: string }>`
    select table_name from information_schema.tables
    where table_schema = 'public' and table_type = 'BASE TABLE' order by table_name`.execute(stack.db);
  const needles = [TIKTOK_HASH, RAW_PHONE, "6505551212", "5551212", "555-1212"];
  const leaks: string[] = [];
  let storedHashSeen = false;
  for (const { table_name } of tables) {
    const { rows } = await sql<{
      row: string;
    }>`select t::text as row from ${sql.table(table_name)} as t`.execute(stack.db);
    for (const { row } of rows) {
      if (row.includes(STORED_HASH)) storedHashSeen = true;
      // The stored hash is Meta's by design; strip it so digits inside it don't match a needle.
      const text = row.split(STORED_HASH).join("");
      for (const needle of needles) if (text.includes(needle)) leaks.push(`${table_name}: ${needle}`);
    }
  }
  expect(storedHashSeen).toBe(true);
  expect(leaks).toEqual([]);
  const logs = stack.logs.join("\n");
  for (const needle of needles) expect(logs, `log contains ${needle}`).not.toContain(needle);
});
