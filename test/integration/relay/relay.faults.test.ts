import { sql } from "kysely";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { addApiKey, bearer } from "../../support/apiTenant";
import { addDestinations } from "../../support/destinations";
import { type FakePlatforms, startFakePlatforms } from "../../support/fakePlatforms";
import { type Stack, startStack, waitFor } from "../../support/stack";
import { createTenant, type TestTenant } from "../../support/tenant";
import { browserHeaders, PAGE_URL } from "../../support/web";

// Platforms failing: every event still arrives, and arrives once (by event_id); a batch a platform refuses
// is dead-lettered, visible and replayable; tokens and device ids never end up in logs or tables.

let stack: Stack;
let fakes: FakePlatforms;

beforeAll(async () => {
  fakes = await startFakePlatforms({ hangMs: 4_000 });
  // Backoff base 0 s so retries come at once; a platform call times out after 1 s.
  stack = await startStack({ relayVars: { ...fakes.vars, RELAY_TIMEOUT_MS: "1000" } });
});
afterAll(async () => {
  await stack?.dispose();
  await fakes?.close();
});

/**
 * Ingests `batches` SDK requests of `size` purchases each (from a browser unless `headers` say otherwise);
 * returns every event id.
 */
async function ingestPurchases(
  t: TestTenant,
  batches: number,
  size: number,
  extra = {},
  headers: Record<string, string> = browserHeaders,
): Promise<string[]> {
  const ids: string[] = [];
  for (let b = 0; b < batches; b++) {
    const events = Array.from({ length: size }, (_, i) => {
      const eventId = `${t.projectId}-${b}-${i}`;
      ids.push(eventId);
      return {
        eventId,
        name: "purchase",
        userId: `u${i}`,
        properties: { value: i, currency: "USD" },
        pageUrl: PAGE_URL,
        ...extra,
      };
    });
    expect((await stack.ingest({ events }, { key: t.sdkKey, headers })).status).toBe(202);
  }
  return ids;
}

async function allAccepted(accepted: Map<string, unknown>, ids: string[]) {
  await waitFor(async () => (ids.every((id) => accepted.has(id)) ? true : undefined), 30_000);
}

async function deliveries(t: TestTenant, kind: string): Promise<Record<string, unknown>[]> {
  const key = await addApiKey(stack.db, t.orgId, "read_only");
  const res = await stack.api(`/v1/projects/${t.projectId}/destinations/${kind}/deliveries?limit=100`, {
    headers: bearer(key.secret),
  });
  expect(res.status).toBe(200);
  return ((await res.json()) as { data: Record<string, unknown>[] }).data;
}

async function destinationStatus(t: TestTenant, kind: "meta" | "tiktok") {
  const row = await stack.db
    .selectFrom("destinations")
    .select(["status", "failing_since"])
    .where("project_id", "=", t.projectId)
    .where("kind", "=", kind)
    .executeTakeFirstOrThrow();
  return row.status;
}

describe("transient failures", () => {
  test("Meta answering 500 for a while: every event delivered exactly once after recovery", async () => {
    const t = await createTenant(stack.db);
    await addDestinations(stack.db, t, fakes, { meta: {} });
    fakes.meta.failNext(4, { kind: "status", status: 500 });
    const ids = await ingestPurchases(t, 3, 20);
    await allAccepted(fakes.meta.accepted, ids);
    for (const id of ids) expect(fakes.meta.received.get(id)).toBe(1);
    const log = await waitFor(async () => {
      const rows = await deliveries(t, "meta");
      return rows.length === 3 && rows.every((r) => r.status === "delivered") ? rows : undefined;
    });
    expect(log.reduce((sum, r) => sum + (r.sentCount as number), 0)).toBe(60);
    expect(log.some((r) => (r.attempts as number) > 1)).toBe(true);
    expect(await destinationStatus(t, "meta")).toBe("active");
  });

  test("TikTok answering 429 with Retry-After: the relay waits that long, then delivers once", async () => {
    const t = await createTenant(stack.db);
    await addDestinations(stack.db, t, fakes, { tiktok: {} });
    fakes.tiktok.failNext(1, { kind: "status", status: 429, retryAfter: "2" });
    const ids = await ingestPurchases(t, 1, 10);
    await allAccepted(fakes.tiktok.accepted, ids);
    for (const id of ids) expect(fakes.tiktok.received.get(id)).toBe(1);
    const mine = fakes.tiktok.requests.filter((r) => r.body.includes(t.projectId));
    expect(mine.map((r) => r.status)).toEqual([429, 200]);
    const [row] = await deliveries(t, "tiktok");
    expect(row).toMatchObject({ status: "delivered", attempts: 2, responseCode: 200 });
    // Backoff base is 0 s in this stack, so only Retry-After can explain the wait between the two calls.
    const times = stack.logs
      .filter((l) => l.includes("relay batch") && l.includes(t.projectId))
      .map((l) => Date.parse(JSON.parse(l).time));
    expect(times.length).toBe(2);
    expect((times[1] ?? 0) - (times[0] ?? 0)).toBeGreaterThanOrEqual(1500);
  });

  test("a call that times out after the platform accepted it is sent again; the platform's event_id dedupe keeps one", async () => {
    const t = await createTenant(stack.db);
    await addDestinations(stack.db, t, fakes, { meta: {} });
    fakes.meta.failNext(1, { kind: "hang", afterAccept: true });
    const ids = await ingestPurchases(t, 1, 5);
    await waitFor(
      async () => (ids.every((id) => fakes.meta.received.get(id) === 2) ? true : undefined),
      30_000,
    );
    // Sent twice (we cannot know the first one landed), accepted once: the platform keeps one per event_id.
    expect(ids.filter((id) => fakes.meta.accepted.has(id))).toEqual(ids);
    const [row] = await waitFor(async () => {
      const rows = await deliveries(t, "meta");
      return rows[0]?.status === "delivered" ? rows : undefined;
    });
    expect(row).toMatchObject({ attempts: 2, sentCount: 5 });
  });
});

describe("permanent failures", () => {
  test("a refused batch (400) is dead-lettered, visible, marks the destination failing, and replays after a fix", async () => {
    const t = await createTenant(stack.db);
    const wrongToken = `EAAwrong${t.projectId.slice(-8)}tokenvalue`;
    const { datasetId, metaToken } = await addDestinations(stack.db, t, fakes, {
      meta: { token: wrongToken, sendDeviceIds: true },
    });
    const idfa = "AB12CD34-0000-4000-8000-DEVICEIDFA01";
    // App events (no browser): they replay whole; a website event's dead letter has no User-Agent.
    const ids = await ingestPurchases(t, 1, 3, { device: { os: "iOS", idfa }, consent: { ads: true } }, {});
    const [row] = await waitFor(async () => {
      const rows = await deliveries(t, "meta");
      return rows[0]?.status === "rejected" ? rows : undefined;
    });
    expect(row).toMatchObject({ attempts: 1, responseCode: 400, sentCount: 0, eventCount: 3 });
    expect(String(row?.error)).toContain("Invalid OAuth access token");
    expect(String(row?.error)).not.toContain(wrongToken);
    // The relay's decision for the batch was final (acked as rejected), so no retry can follow it.
    await waitFor(async () =>
      stack.logs.some(
        (l) => l.includes("relay batch done") && l.includes(t.projectId) && l.includes('"status":"rejected"'),
      )
        ? true
        : undefined,
    );
    expect(fakes.meta.requests.filter((r) => r.body.includes(t.projectId))).toHaveLength(1);
    expect(await destinationStatus(t, "meta")).toBe("failing");
    const dead = await stack.db
      .selectFrom("relay_dead_letters")
      .selectAll()
      .where("project_id", "=", t.projectId)
      .execute();
    expect(dead).toHaveLength(1);
    expect(dead[0]).toMatchObject({ reason: "rejected", response_code: 400, replayed_at: null });

    // Device ids were in the queue message only: no table holds them, not even the dead letter.
    const leaks = await sql<{ table_name: string }>`
      select c.relname as table_name from pg_class c join pg_namespace n on n.oid = c.relnamespace
      where n.nspname = 'public' and c.relkind = 'r'`.execute(stack.db);
    for (const { table_name } of leaks.rows) {
      const hit = await sql<{ n: string }>`
        select count(*)::text as n from ${sql.table(table_name)} x where x::text ilike ${`%${idfa}%`}`.execute(
        stack.db,
      );
      expect({ table_name, n: hit.rows[0]?.n }).toEqual({ table_name, n: "0" });
    }

    // The partner fixes the token (here: the platform starts accepting it) and replays.
    fakes.meta.tokens.set(datasetId, wrongToken);
    const admin = await addApiKey(stack.db, t.orgId, "admin");
    const replay = await stack.api(`/v1/projects/${t.projectId}/destinations/meta/dead-letters/replay`, {
      method: "POST",
      headers: bearer(admin.secret),
    });
    expect(replay.status).toBe(200);
    expect(await replay.json()).toEqual({ object: "relay_replay", replayed: 1, hasMore: false });
    await allAccepted(fakes.meta.accepted, ids);
    // Replayed without the device id (dead letters never keep it).
    for (const id of ids)
      expect((fakes.meta.accepted.get(id)?.user_data as { madid?: string }).madid).toBeUndefined();
    await waitFor(async () => ((await destinationStatus(t, "meta")) === "active" ? true : undefined));
    const again = await stack.api(`/v1/projects/${t.projectId}/destinations/meta/dead-letters/replay`, {
      method: "POST",
      headers: bearer(admin.secret),
    });
    expect(await again.json()).toMatchObject({ replayed: 0 });
    expect(metaToken).not.toBe(wrongToken);
  });

  test("a platform down past every attempt: dead-lettered after max retries, destination failing, replay delivers once", async () => {
    const t = await createTenant(stack.db);
    await addDestinations(stack.db, t, fakes, { tiktok: {} });
    fakes.tiktok.failAlways({ kind: "status", status: 503 });
    try {
      const ids = await ingestPurchases(t, 1, 4);
      const [row] = await waitFor(async () => {
        const rows = await deliveries(t, "tiktok");
        return rows[0]?.status === "dead_lettered" ? rows : undefined;
      }, 45_000);
      expect(row).toMatchObject({ attempts: 11, responseCode: 503 }); // 1 + max_retries (10)
      expect(await destinationStatus(t, "tiktok")).toBe("failing");
      const dead = await stack.db
        .selectFrom("relay_dead_letters")
        .select(["reason", "response_code"])
        .where("project_id", "=", t.projectId)
        .execute();
      expect(dead).toEqual([{ reason: "max_attempts", response_code: 503 }]);
      fakes.tiktok.failAlways(null);

      const admin = await addApiKey(stack.db, t.orgId, "admin");
      const replay = await stack.api(`/v1/projects/${t.projectId}/destinations/tiktok/dead-letters/replay`, {
        method: "POST",
        headers: bearer(admin.secret),
      });
      expect(await replay.json()).toMatchObject({ replayed: 1 });
      await allAccepted(fakes.tiktok.accepted, ids);
      for (const id of ids) expect(fakes.tiktok.received.get(id)).toBe(1);
      await waitFor(async () => ((await destinationStatus(t, "tiktok")) === "active" ? true : undefined));
    } finally {
      fakes.tiktok.failAlways(null);
    }
  });

  test("no destination token in any log line or delivery-log error", async () => {
    const rows = await stack.db.selectFrom("relay_deliveries").select("error").execute();
    const texts = [...stack.logs, ...rows.map((r) => r.error ?? "")].join("\n");
    for (const token of [...fakes.meta.tokens.values(), ...fakes.tiktok.tokens.values()]) {
      expect(texts).not.toContain(token);
    }
    expect(stack.logs.some((l) => l.includes("relay batch done"))).toBe(true);
  });
});
