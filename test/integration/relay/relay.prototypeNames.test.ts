import { sql } from "kysely";
import { afterAll, beforeAll, expect, test } from "vitest";
import { addApiKey, bearer } from "../../support/apiTenant";
import { addDestinations } from "../../support/destinations";
import { type FakePlatforms, startFakePlatforms } from "../../support/fakePlatforms";
import { type Stack, startStack, waitFor } from "../../support/stack";
import { createTenant } from "../../support/tenant";
import { browserHeaders, PAGE_URL } from "../../support/web";

// Event names and property keys named like Object.prototype members are the partner's strings like any
// other: stored as sent, counted, relayed to Meta as custom events, skipped by TikTok as non-standard,
// read back unchanged. "level_up" (an ordinary unknown name) with the same properties is the yardstick.

const NAMES = ["constructor", "__proto__", "toString", "hasOwnProperty", "valueOf"];
const CONTROL = "level_up";
/** "__proto__" as an own key holding commerce fields: they must not become the properties' prototype. */
const PROPERTIES_JSON =
  '{"__proto__":{"value":999,"currency":"EUR","order_id":"o-proto"},"constructor":"c","toString":"t","hasOwnProperty":1,"valueOf":2,"plan":"pro"}';

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

test("events and properties named constructor, __proto__, toString… go through ingest, Postgres and the relays like any unknown name", async () => {
  const t = await createTenant(stack.db);
  await addDestinations(stack.db, t, fakes, { meta: {}, tiktok: {} });
  const p = t.projectId;
  const names = [...NAMES, CONTROL];
  const id = (name: string) => `${name}-${p}`;
  // Sent as raw JSON: an object literal would turn "__proto__" into a prototype before it left the test.
  const rawBody = `{"events":[${names
    .map(
      (name) =>
        `{"eventId":"${id(name)}","name":"${name}","userId":"proto-user","pageUrl":"${PAGE_URL}","properties":${PROPERTIES_JSON}}`,
    )
    .join(",")}]}`;
  const response = await stack.ingest(null, { key: t.sdkKey, headers: browserHeaders, rawBody });
  expect(response.status).toBe(202);
  expect(await response.json()).toEqual({ accepted: names.length, rejected: [] });

  // Stored as sent: every name, every property key ("__proto__" included), counted once each.
  const expected = JSON.parse(PROPERTIES_JSON);
  const stored = await waitFor(async () => {
    const { rows } = await sql<{ event_id: string; name: string; props: string }>`
      select event_id, name, properties::text as props from sdk_events where project_id = ${p}
      order by event_id`.execute(stack.db);
    return rows.length === names.length ? rows : undefined;
  });
  for (const name of names) {
    const row = stored.find((r) => r.event_id === id(name));
    expect(row?.name).toBe(name);
    expect(JSON.parse(row?.props ?? "null")).toEqual(expected);
  }
  const { rows: counts } = await sql<{ event_name: string; n: string }>`
    select event_name, sum(count)::text as n from event_daily_counts where project_id = ${p}
    group by event_name order by event_name`.execute(stack.db);
  expect(counts.map((c) => [c.event_name, c.n])).toEqual(names.toSorted().map((name) => [name, "1"]));
  const { rows: users } = await sql<{ props: string }>`
    select properties::text as props from sdk_users where project_id = ${p}`.execute(stack.db);
  expect(users.map((u) => JSON.parse(u.props))).toEqual([expected]);

  // Meta: custom events under our prefix, exactly like the yardstick (no commerce field from the
  // "__proto__" key: it is a property, not a prototype to read value or currency from).
  await waitFor(async () => (names.every((n) => fakes.meta.accepted.has(id(n))) ? true : undefined));
  const control = fakes.meta.accepted.get(id(CONTROL)) as Record<string, unknown>;
  for (const name of NAMES) {
    const sent = fakes.meta.accepted.get(id(name)) as Record<string, unknown>;
    expect(sent.event_name).toBe(`layers_${name}`);
    const { event_name: _a, event_id: _b, ...rest } = sent;
    const { event_name: _c, event_id: _d, ...controlRest } = control;
    expect(rest).toEqual(controlRest);
  }
  expect(control.custom_data).toBeUndefined();
  for (const r of fakes.meta.requests.filter((q) => q.body.includes(p)))
    expect(r.body).not.toContain("o-proto");

  // TikTok: none of them is a standard event, the yardstick neither; skipped, the batch not failed.
  const tiktok = await waitFor(async () => {
    const row = await stack.db
      .selectFrom("relay_deliveries")
      .select(["status", "sent_count", "skipped"])
      .where("project_id", "=", p)
      .where("destination", "=", "tiktok")
      .executeTakeFirst();
    return row;
  });
  expect(tiktok).toEqual({
    status: "skipped",
    sent_count: 0,
    skipped: { not_a_standard_event: names.length },
  });
  const meta = await stack.db
    .selectFrom("relay_deliveries")
    .select(["status", "sent_count", "skipped"])
    .where("project_id", "=", p)
    .where("destination", "=", "meta")
    .executeTakeFirstOrThrow();
  expect(meta).toEqual({ status: "delivered", sent_count: names.length, skipped: {} });

  // Read back through the API unchanged (last: on the embedded PGlite, one session for every
  // connection, a query racing the API Worker's would trip over its statements).
  const key = await addApiKey(stack.db, t.orgId, "developer");
  const access = await stack.api(`/v1/projects/${p}/events/users/proto-user?limit=100`, {
    headers: bearer(key.secret),
  });
  expect(access.status).toBe(200);
  const body = JSON.parse(await access.text()) as {
    events: { data: { name: string; properties: unknown }[] };
    user: { properties: unknown };
  };
  expect(body.events.data.map((e) => e.name).toSorted()).toEqual(names.toSorted());
  for (const e of body.events.data) expect(e.properties).toEqual(expected);
  expect(body.user.properties).toEqual(expected);
});
