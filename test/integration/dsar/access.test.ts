import { sql } from "kysely";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { persistEvents } from "../../../functions/events/persistEvents";
import { NEON_HTTP_APPLICATION_NAME } from "../../../scripts/local/neon-http";
import { sha256Hex } from "../../../shared/hash";
import { eventsMessage, queuedEvent } from "../../support/messages";
import { type Stack, startStack, waitFor } from "../../support/stack";
import { createTenant, type TestTenant } from "../../support/tenant";
import { call, expectNoPlaintext, ownerKey } from "./helpers";

// Access and portability: a partner answers an end user's access request through the API, as JSON pages
// or one streamed NDJSON export, and finds user ids from the email or phone they hold.

let stack: Stack;
beforeAll(async () => {
  stack = await startStack({ consumer: "recorder" });
});
afterAll(() => stack?.dispose());

const BASE = Date.UTC(2026, 5, 1);
const at = (minute: number) => new Date(BASE + minute * 60_000).toISOString();

/** `n` events for `userId`, one a minute from BASE, stored as the consumer stores them. */
async function seed(
  t: TestTenant,
  userId: string,
  n: number,
  extra: Partial<Parameters<typeof queuedEvent>[0]> = {},
) {
  for (let start = 0; start < n; start += 500) {
    const events = Array.from({ length: Math.min(500, n - start) }, (_, k) => {
      const i = start + k;
      return queuedEvent({
        eventId: `${userId}-${String(i).padStart(5, "0")}`,
        userId,
        name: "view",
        timestamp: at(i),
        properties: { i },
        ...extra,
      });
    });
    await persistEvents(stack.db, eventsMessage(t, events));
  }
}

describe("GET /v1/projects/:projectId/events/users/:userId", () => {
  test("events newest first with cursor pages, the user's state and hashed identifiers", async () => {
    const t = await createTenant(stack.db);
    const secret = await ownerKey(stack, t, "developer");
    const emailSha256 = await sha256Hex("pat@example.com");
    await seed(t, "pat", 5, { emailSha256 });
    await seed(t, "someone-else", 3);
    const path = `/v1/projects/${t.projectId}/events/users/pat`;

    const first = await call(stack, secret, "GET", `${path}?limit=2`);
    expect(first.status).toBe(200);
    expect(first.body).toMatchObject({
      object: "user_data",
      projectId: t.projectId,
      userId: "pat",
      user: { object: "user", userId: "pat", properties: { i: 4 }, emailSha256, phoneSha256: null },
    });
    expect(first.body.user.firstSeenAt).toBe(at(0));
    expect(first.body.user.lastSeenAt).toBe(at(4));
    expect(first.body.events.data.map((e: { id: string }) => e.id)).toEqual(["pat-00004", "pat-00003"]);
    expect(first.body.events.data[0]).toMatchObject({
      object: "event",
      name: "view",
      timestamp: at(4),
      emailSha256,
    });
    expect(first.body.events).toMatchObject({ hasMore: true, nextCursor: "pat-00003" });

    const ids: string[] = [...first.body.events.data.map((e: { id: string }) => e.id)];
    let cursor = first.body.events.nextCursor;
    while (cursor) {
      const next = await call(stack, secret, "GET", `${path}?limit=2&starting_after=${cursor}`);
      ids.push(...next.body.events.data.map((e: { id: string }) => e.id));
      cursor = next.body.events.nextCursor;
    }
    expect(ids).toEqual(["pat-00004", "pat-00003", "pat-00002", "pat-00001", "pat-00000"]);

    const window = await call(stack, secret, "GET", `${path}?order=asc&from=${at(1)}&to=${at(3)}`);
    expect(window.body.events.data.map((e: { id: string }) => e.id)).toEqual(["pat-00001", "pat-00002"]);
  });

  test("a user we hold nothing for: 200 with user null and no events (the honest answer)", async () => {
    const t = await createTenant(stack.db);
    const secret = await ownerKey(stack, t, "developer");
    const r = await call(stack, secret, "GET", `/v1/projects/${t.projectId}/events/users/nobody`);
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ user: null, events: { data: [], hasMore: false, nextCursor: null } });
  });

  test("bad paging input is a 400 invalid_request", async () => {
    const t = await createTenant(stack.db);
    const secret = await ownerKey(stack, t, "developer");
    const path = `/v1/projects/${t.projectId}/events/users/pat`;
    for (const q of ["limit=101", "limit=0", "order=sideways", "from=yesterday", "starting_after=missing"]) {
      const r = await call(stack, secret, "GET", `${path}?${q}`);
      expect(r.status, q).toBe(400);
      expect(r.body.error.code, q).toBe("invalid_request");
    }
  });

  test("Accept: application/x-ndjson streams the whole history across pages, newest first", async () => {
    const t = await createTenant(stack.db);
    const secret = await ownerKey(stack, t, "developer");
    await seed(t, "long", 2_345); // more than two export pages of 1,000
    const r = await stack.api(`/v1/projects/${t.projectId}/events/users/long`, {
      headers: { Authorization: `Bearer ${secret}`, Accept: "application/x-ndjson" },
    });
    expect(r.status).toBe(200);
    expect(r.headers.get("content-type")).toContain("application/x-ndjson");
    const lines = (await r.text())
      .trimEnd()
      .split("\n")
      .map((l) => JSON.parse(l));
    expect(lines[0]).toMatchObject({ object: "user_data", userId: "long", user: { userId: "long" } });
    const events = lines.slice(1);
    expect(events).toHaveLength(2_345);
    expect(events[0].id).toBe("long-02344");
    expect(events.at(-1).id).toBe("long-00000");
    expect(new Set(events.map((e: { id: string }) => e.id)).size).toBe(2_345);
  });

  // PGlite is one session: there are no per-connection backends to count there.
  test.runIf(Boolean(process.env.TEST_DATABASE_URL))(
    "an export the client abandons half-way releases its connection",
    async () => {
      const t = await createTenant(stack.db);
      const secret = await ownerKey(stack, t, "developer");
      // Far more than the transport buffers while the client reads nothing: the export stays open, on its
      // connection, until the client cancels it.
      await seed(t, "quitter", 20_000);
      const before = await backendsAsApp();
      for (let i = 0; i < 3; i++) {
        const r = await stack.api(`/v1/projects/${t.projectId}/events/users/quitter`, {
          headers: { Authorization: `Bearer ${secret}`, Accept: "application/x-ndjson" },
        });
        const reader = (r.body as ReadableStream<Uint8Array>).getReader();
        await reader.read();
        // The counter sees the export's connection while it is open, so "released" below means something.
        // The first line (read over HTTP) can arrive before the export's cursor has connected: wait for it.
        if (i === 0) await waitFor(async () => ((await backendsAsApp()) > before ? true : undefined));
        await reader.cancel();
      }
      // The Neon pool is destroyed once the stream is cancelled: no connection of ours lingers. A page
      // query in flight at the cancel finishes first (up to 1,000 rows), so this waits for the count to
      // come back down rather than reading it once; a connection that is never released fails the wait.
      await waitFor(async () => ((await backendsAsApp()) <= before ? true : undefined), 30_000);
    },
  );
});

/**
 * Open connections of the app role the API Worker opened itself (not the SQL-over-HTTP stand-in's pool,
 * Neon's in production); on PGlite there are no separate backends.
 */
async function backendsAsApp(): Promise<number> {
  const { rows } = await sql<{ n: string }>`
    select count(*) as n from pg_stat_activity
    where usename = 'layers_api' and application_name <> ${NEON_HTTP_APPLICATION_NAME}
  `.execute(stack.db);
  return Number(rows[0]?.n ?? 0);
}

describe("POST /v1/projects/:projectId/users/lookup", () => {
  test("email or phone hashed with the ingest normalization, or their SHA-256, finds the user ids", async () => {
    const t = await createTenant(stack.db);
    const secret = await ownerKey(stack, t, "developer");
    const emailSha256 = await sha256Hex("jo@example.com");
    const oldEmail = await sha256Hex("jo.old@example.com");
    const phoneSha256 = await sha256Hex("4915112345678");
    await persistEvents(
      stack.db,
      eventsMessage(t, [
        queuedEvent({ eventId: "e1", userId: "jo", emailSha256: oldEmail, timestamp: at(0) }),
        queuedEvent({ eventId: "e2", userId: "jo", emailSha256, phoneSha256, timestamp: at(1) }),
        queuedEvent({ eventId: "e3", userId: "jo-tablet", emailSha256, timestamp: at(2) }),
        queuedEvent({ eventId: "e4", userId: "other", timestamp: at(3) }),
      ]),
    );
    const lookup = (body: unknown) =>
      call(stack, secret, "POST", `/v1/projects/${t.projectId}/users/lookup`, body);
    const ids = (r: { body: { data: { userId: string }[] } }) => r.body.data.map((m) => m.userId);

    expect(ids(await lookup({ email: "  JO@Example.com " }))).toEqual(["jo", "jo-tablet"]);
    expect(ids(await lookup({ emailSha256: emailSha256.toUpperCase() }))).toEqual(["jo", "jo-tablet"]);
    // An address the user no longer has still matches the events that carried it.
    expect(ids(await lookup({ email: "jo.old@example.com" }))).toEqual(["jo"]);
    expect(ids(await lookup({ phone: "+49 151 1234-5678" }))).toEqual(["jo"]);
    expect(ids(await lookup({ phoneSha256 }))).toEqual(["jo"]);
    expect(ids(await lookup({ email: "nobody@example.com" }))).toEqual([]);

    for (const bad of [{}, { email: "a@b.c", phone: "1" }, { emailSha256: "xyz" }, { name: "jo" }]) {
      const r = await lookup(bad);
      expect(r.status, JSON.stringify(bad)).toBe(400);
      expect(r.body.error.code).toBe("invalid_request");
    }
  });

  test("the raw email and phone of a lookup are never logged or stored", async () => {
    const t = await createTenant(stack.db);
    const secret = await ownerKey(stack, t, "developer");
    const rawEmail = "secret.person.7781@example.org";
    const rawPhone = "+1 555 0199 7781";
    await call(stack, secret, "POST", `/v1/projects/${t.projectId}/users/lookup`, { email: rawEmail });
    await call(stack, secret, "POST", `/v1/projects/${t.projectId}/users/lookup`, { phone: rawPhone });
    await call(stack, secret, "POST", `/v1/projects/${t.projectId}/users/lookup`, {
      email: rawEmail,
      phone: rawPhone,
    });
    await new Promise((resolve) => setTimeout(resolve, 300)); // the request-log rows are written after the answer
    expectNoPlaintext(stack.logs.join("\n"), [rawEmail, rawPhone, "15550199778"]);
    const stored = JSON.stringify([
      await stack.db.selectFrom("request_logs").selectAll().where("org_id", "=", t.orgId).execute(),
      await stack.db.selectFrom("audit_log").selectAll().where("org_id", "=", t.orgId).execute(),
      await stack.db.selectFrom("idempotency_keys").selectAll().where("org_id", "=", t.orgId).execute(),
    ]);
    expectNoPlaintext(stored, [rawEmail, rawPhone]);
  });
});

// Who may read end-user data (developer and above; 404 for another org's or another project's key) is in
// the shared route security suite, run for these routes by deletion.test.ts.
