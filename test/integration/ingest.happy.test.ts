import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { UA, waitForEvents } from "../support/rows";
import { sha256 } from "../support/sha256";
import { type Stack, startStack } from "../support/stack";
import { createTenant } from "../support/tenant";

// End to end through the real Workers: HTTP → ingest (workerd) → queue → consumer (workerd) → Postgres.

let stack: Stack;
beforeAll(async () => {
  stack = await startStack();
});
afterAll(() => stack?.dispose());

describe("POST /l/events → Postgres", () => {
  test("a batch is stored with hashed identifiers, geo, parsed UA and corrected clock skew", async () => {
    const t = await createTenant(stack.db);
    const before = Date.now();
    // The device clock runs 1 hour fast: sentAt and timestamps are both shifted by it.
    const skew = 3_600_000;
    const deviceNow = before + skew;
    const res = await stack.ingest(
      {
        sentAt: new Date(deviceNow).toISOString(),
        events: [
          {
            eventId: "evt-a",
            name: "signup",
            userId: "user-1",
            timestamp: new Date(deviceNow - 60_000).toISOString(),
            appId: "com.example.app",
            email: "  Jane.Doe@Example.COM ",
            phone: "+1 (415) 555-0100",
            properties: { plan: "pro", seats: 3 },
          },
          {
            eventId: "evt-b",
            name: "purchase",
            userId: "user-1",
            timestamp: new Date(deviceNow - 30_000).toISOString(),
            properties: { plan: "team", value: 9.99, currency: "EUR" },
            device: { os: "iOS", osVersion: "17.5", model: "iPhone15,2" },
          },
          { eventId: "evt-c", name: "page_view" },
        ],
      },
      {
        key: t.sdkKey,
        headers: { "User-Agent": UA.chromeDesktop },
        cf: { country: "DE", region: "Bavaria" },
      },
    );
    const after = Date.now();

    expect(res.status).toBe(202);
    expect(res.headers.get("X-Request-Id")).toMatch(/^req_/);
    expect(await res.json()).toEqual({ accepted: 3, rejected: [] });

    const rows = await waitForEvents(stack.db, t.projectId, 3);
    const byId = Object.fromEntries(rows.map((r) => [r.event_id, r]));
    const a = byId["evt-a"]!;
    expect(a).toMatchObject({
      org_id: t.orgId,
      name: "signup",
      user_id: "user-1",
      app_id: "com.example.app",
      country: "DE",
      region: "Bavaria",
      os: "Windows",
      browser: "Chrome",
      email_sha256: sha256("jane.doe@example.com"),
      phone_sha256: sha256("14155550100"),
      properties: { plan: "pro", seats: 3 },
    });
    // timestamp = receivedAt − (sentAt − timestamp): one minute before receipt, whatever the device clock.
    const receivedAt = a.received_at.getTime();
    expect(receivedAt).toBeGreaterThanOrEqual(before);
    expect(receivedAt).toBeLessThanOrEqual(after);
    expect(a.ts.getTime()).toBe(receivedAt - 60_000);
    expect(byId["evt-b"]!.ts.getTime()).toBe(receivedAt - 30_000);
    // What the SDK reported about the device wins over the User-Agent.
    expect(byId["evt-b"]).toMatchObject({ os: "iOS", os_version: "17.5", device_model: "iPhone15,2" });
    // No timestamp: the event happened when it was received.
    expect(byId["evt-c"]!.ts.getTime()).toBe(receivedAt);
    expect(byId["evt-c"]).toMatchObject({
      user_id: null,
      email_sha256: null,
      phone_sha256: null,
      properties: {},
    });

    const user = await stack.db
      .selectFrom("sdk_users")
      .selectAll()
      .where("project_id", "=", t.projectId)
      .executeTakeFirstOrThrow();
    expect(user).toMatchObject({
      user_id: "user-1",
      // Each key from the newest event that carried it: plan from evt-b, seats only in evt-a.
      properties: { plan: "team", seats: 3, value: 9.99, currency: "EUR" },
      email_sha256: sha256("jane.doe@example.com"),
      phone_sha256: sha256("14155550100"),
    });
    expect(user.first_seen_at.getTime()).toBe(a.ts.getTime());
    expect(user.last_seen_at.getTime()).toBe(byId["evt-b"]!.ts.getTime());

    const counts = await stack.db
      .selectFrom("event_daily_counts")
      .select(["event_name", "country", "count"])
      .where("project_id", "=", t.projectId)
      .orderBy("event_name")
      .execute();
    expect(counts.map((c) => [c.event_name, c.country, Number(c.count)])).toEqual([
      ["page_view", "DE", 1],
      ["purchase", "DE", 1],
      ["signup", "DE", 1],
    ]);
  });

  test("rectification: a later event updates current-state properties, a late older one never overwrites", async () => {
    const t = await createTenant(stack.db);
    const now = Date.now();
    const send = async (eventId: string, ageMs: number, properties: Record<string, unknown>) => {
      const res = await stack.ingest(
        { eventId, name: "profile", userId: "u", timestamp: new Date(now - ageMs).toISOString(), properties },
        { key: t.sdkKey },
      );
      expect(res.status).toBe(202);
    };
    await send("e1", 10_000, { city: "Berlin", tier: "free" });
    await waitForEvents(stack.db, t.projectId, 1);
    await send("e2", 5_000, { city: "Munich" }); // newer: corrects city
    await waitForEvents(stack.db, t.projectId, 2);
    await send("e3", 60_000, { city: "Hamburg", locale: "de" }); // older, arrives last: fills locale only
    const rows = await waitForEvents(stack.db, t.projectId, 3);

    const user = await stack.db
      .selectFrom("sdk_users")
      .select(["properties", "first_seen_at", "last_seen_at"])
      .where("project_id", "=", t.projectId)
      .executeTakeFirstOrThrow();
    expect(user.properties).toEqual({ city: "Munich", tier: "free", locale: "de" });
    expect(user.first_seen_at.getTime()).toBe(now - 60_000);
    expect(user.last_seen_at.getTime()).toBe(now - 5_000);
    // Past events are immutable: each keeps what the SDK reported at the time.
    expect(rows.find((r) => r.event_id === "e1")!.properties).toEqual({ city: "Berlin", tier: "free" });
  });

  test("a single event object (no envelope) is accepted; CORS lets browsers send", async () => {
    const t = await createTenant(stack.db);
    const res = await stack.ingest(
      { eventId: "solo", name: "open" },
      { key: t.sdkKey, headers: { Origin: "https://shop.example" } },
    );
    expect(res.status).toBe(202);
    expect(res.headers.get("Access-Control-Allow-Origin")).toBe("*");
    const preflight = await stack.mf.dispatchFetch("http://ingest.test/l/events", {
      method: "OPTIONS",
      headers: {
        Origin: "https://shop.example",
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type",
      },
    });
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get("Access-Control-Allow-Headers")?.toLowerCase()).toContain("authorization");
    await waitForEvents(stack.db, t.projectId, 1);
  });

  test("hashing rules, table-driven, end to end", async () => {
    const t = await createTenant(stack.db);
    const preHashed = sha256("someone@example.com");
    const cases: {
      email?: string | null;
      phone?: string | null;
      emailSha256: string | null;
      phoneSha256: string | null;
    }[] = [
      { email: "Alice@Example.com", emailSha256: sha256("alice@example.com"), phoneSha256: null },
      { email: "\t bob@EXAMPLE.org \n", emailSha256: sha256("bob@example.org"), phoneSha256: null },
      { phone: "+44 20 7946 0958", emailSha256: null, phoneSha256: sha256("442079460958") },
      // National format, placed in the request's geo country (DE here): one number, one hash.
      { phone: "0170 123 4567", emailSha256: null, phoneSha256: sha256("491701234567") },
      { phone: "0049 170 1234567", emailSha256: null, phoneSha256: sha256("491701234567") },
      { phone: "+1.415.555.0100 ", emailSha256: null, phoneSha256: sha256("14155550100") },
      // Pre-hashed values are kept (lower-cased), never hashed a second time.
      {
        email: preHashed.toUpperCase(),
        phone: ` ${preHashed} `,
        emailSha256: preHashed,
        phoneSha256: preHashed,
      },
      // Empty after normalization: dropped, not hashed.
      { email: "   ", phone: "+-() ", emailSha256: null, phoneSha256: null },
      { email: null, phone: null, emailSha256: null, phoneSha256: null },
    ];
    const res = await stack.ingest(
      {
        events: cases.map((c, i) => ({ eventId: `h${i}`, name: "identify", email: c.email, phone: c.phone })),
      },
      { key: t.sdkKey },
    );
    expect(await res.json()).toEqual({ accepted: cases.length, rejected: [] });
    const rows = await waitForEvents(stack.db, t.projectId, cases.length);
    for (const [i, c] of cases.entries()) {
      const row = rows.find((r) => r.event_id === `h${i}`)!;
      expect({ i, email: row.email_sha256, phone: row.phone_sha256 }).toEqual({
        i,
        email: c.emailSha256,
        phone: c.phoneSha256,
      });
    }
  });
});
