import { sql } from "kysely";
import { afterAll, beforeAll, expect, test } from "vitest";
import { waitForEvents } from "../support/rows";
import { objectTexts } from "../support/scan";
import { sha256 } from "../support/sha256";
import { type Stack, startStack, waitFor } from "../support/stack";
import { createTenant } from "../support/tenant";

// Privacy is tested, not assumed: after ingesting events that carry a known email, phone, IP, User-Agent
// and device ids, no column of any table, no object in any bucket (dead letters, archives) and no captured
// log line holds any of the raw strings.

const RAW = {
  email: "Priya.Sharma+Probe@Example.org",
  phone: "+1 (415) 555-0199",
  ipv4: "203.0.113.77",
  ipv4Forwarded: "198.51.100.23",
  ipv6: "2001:db8:85a3::8a2e:370:7334",
  userAgent:
    "Mozilla/5.0 (Linux; Android 14; Pixel 8 Pro) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.6367.82 Mobile Safari/537.36 LayersPrivacyProbe/9.9",
  idfa: "6D92078A-8246-4BA4-AE5B-76104861E7DC",
  gaid: "38400000-8cf0-11bd-b23e-10b96e40000d",
};

// Each raw value in the forms it could leak in: as sent, normalized, digits only.
const NEEDLES = [
  RAW.email,
  RAW.email.toLowerCase(),
  RAW.phone,
  "14155550199",
  "415) 555-0199",
  RAW.ipv4,
  RAW.ipv4Forwarded,
  RAW.ipv6,
  RAW.userAgent,
  "LayersPrivacyProbe",
  RAW.idfa,
  RAW.idfa.toLowerCase(),
  RAW.gaid,
];

let stack: Stack;
beforeAll(async () => {
  stack = await startStack({
    // A database outage past a short retry window dead-letters a batch, so object storage is scanned too.
    ingestVars: { SDK_KEY_CACHE_TTL_SECONDS: "600" },
    consumerVars: { RETRY_BASE_DELAY_SECONDS: "0" },
    consumerMaxRetries: 1,
  });
});
afterAll(() => stack?.dispose());

test("no raw email, phone, IP, User-Agent, device id or key is stored in any table or written to any log", async () => {
  const t = await createTenant(stack.db);
  const res = await stack.ingest(
    {
      events: [
        {
          eventId: "pii-1",
          name: "signup",
          userId: "user-pii",
          email: RAW.email,
          phone: RAW.phone,
          device: { idfa: RAW.idfa, gaid: RAW.gaid },
          consent: { ads: true },
        },
        // Invalid on purpose: rejected events must not leak through error paths either.
        { eventId: "pii-bad", name: "", email: RAW.email, phone: RAW.phone, device: { idfa: RAW.idfa } },
      ],
    },
    {
      key: t.sdkKey,
      headers: {
        "User-Agent": RAW.userAgent,
        "CF-Connecting-IP": RAW.ipv4,
        "X-Forwarded-For": `${RAW.ipv4Forwarded}, ${RAW.ipv4}`,
        "X-Real-IP": RAW.ipv6,
      },
      cf: { country: "US", region: "California", city: "San Francisco" },
    },
  );
  expect(res.status).toBe(202);
  // And a request that fails as a whole, with the same PII in it.
  await stack.ingest(null, {
    key: t.sdkKey,
    rawBody: `{"events":[{"email":"${RAW.email}","phone":"${RAW.phone}"`,
    headers: { "User-Agent": RAW.userAgent, "CF-Connecting-IP": RAW.ipv4 },
  });
  await waitForEvents(stack.db, t.projectId, 1);

  const { rows: tables } = await sql<{ table_name: string }>`
    select table_name from information_schema.tables
    where table_schema = 'public' and table_type = 'BASE TABLE' order by table_name`.execute(stack.db);
  expect(tables.length).toBeGreaterThanOrEqual(6);

  const leaks: string[] = [];
  let hashedEmailSeen = false;
  for (const { table_name } of tables) {
    // Every column of every row, cast to text.
    const { rows } = await sql<{
      row: string;
    }>`select t::text as row from ${sql.table(table_name)} as t`.execute(stack.db);
    for (const { row } of rows) {
      const text = row.toLowerCase();
      if (text.includes(sha256(RAW.email.toLowerCase()))) hashedEmailSeen = true;
      for (const needle of [...NEEDLES, t.sdkKey]) {
        if (text.includes(needle.toLowerCase())) leaks.push(`${table_name}: ${needle}`);
      }
    }
  }
  // The scan saw the data it was looking through: the hashes are there, the raw values are not.
  expect(hashedEmailSeen).toBe(true);
  expect(leaks).toEqual([]);

  const stored = await stack.db
    .selectFrom("sdk_events")
    .select(["email_sha256", "phone_sha256", "country", "os", "browser"])
    .where("project_id", "=", t.projectId)
    .executeTakeFirstOrThrow();
  expect(stored).toEqual({
    email_sha256: sha256(RAW.email.toLowerCase()),
    phone_sha256: sha256("14155550199"),
    country: "US",
    os: "Android",
    browser: "Chrome",
  });

  const logs = stack.logs.join("\n").toLowerCase();
  expect(logs).toContain(t.projectId.toLowerCase()); // the logs were captured
  for (const needle of [...NEEDLES, t.sdkKey])
    expect(logs, `log contains ${needle}`).not.toContain(needle.toLowerCase());

  // The same data, dead-lettered while the database is down: kept in object storage without any of it.
  await stack.stopBridge();
  const dead = await stack.ingest(
    {
      events: [
        {
          eventId: "pii-dead",
          name: "signup",
          userId: "user-pii",
          email: RAW.email,
          phone: RAW.phone,
          device: { idfa: RAW.idfa, gaid: RAW.gaid },
          consent: { ads: true },
        },
      ],
    },
    { key: t.sdkKey, headers: { "User-Agent": RAW.userAgent, "CF-Connecting-IP": RAW.ipv4 } },
  );
  expect(dead.status).toBe(202);
  await waitFor(async () => ((await stack.deadLetters("events")).length > 0 ? true : undefined), 30_000);
  await stack.restartBridge();
  const objects = [...(await objectTexts(stack.s3.deadLetters)), ...(await objectTexts(stack.s3.storage))];
  // The scan saw the dead letter: its event id and hashed email are there, the raw values are not.
  expect(
    objects.some((o) => o.text.includes("pii-dead") && o.text.includes(sha256(RAW.email.toLowerCase()))),
  ).toBe(true);
  for (const { key, text } of objects) {
    for (const needle of [...NEEDLES, t.sdkKey]) {
      expect(text.toLowerCase(), `${key} holds ${needle}`).not.toContain(needle.toLowerCase());
    }
  }
});
