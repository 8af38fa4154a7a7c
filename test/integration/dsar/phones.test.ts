import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { waitForEvents } from "../../support/rows";
import { sha256 } from "../../support/sha256";
import { type Stack, startStack } from "../../support/stack";
import { createTenant, type TestTenant } from "../../support/tenant";
import { call, expectNoPlaintext, ownerKey, runCron } from "./helpers";

// One phone number, one hash, through the real Workers: whatever form the SDK sent ("0049 …" from a US
// device, "+49 …", a German national number with phoneCountry), the stored hash is the same, and a
// partner's lookup or deletion by the national form with phoneCountry finds the rows.

const DE_DIGITS = "491701234567";
const US_DIGITS = "16505551212";

let stack: Stack;
beforeAll(async () => {
  stack = await startStack();
});
afterAll(() => stack?.dispose());

/** Ingests one event per (user, phone, geo country, phoneCountry) and waits until all are stored. */
async function ingestPhones(t: TestTenant) {
  const sends: [string, string, string, string | undefined][] = [
    ["de-intl-00", "0049 170 1234567", "US", undefined],
    ["de-intl-plus", "+49 170 1234567", "DE", undefined],
    ["de-national", "0170 1234567", "US", "de"],
    ["us-national", "(650)555-1212", "US", undefined],
  ];
  for (const [userId, phone, country, phoneCountry] of sends) {
    const response = await stack.ingest(
      { events: [{ eventId: `${userId}-1`, name: "identify", userId, phone, phoneCountry }] },
      { key: t.sdkKey, cf: { country } },
    );
    expect(response.status, userId).toBe(202);
  }
  await waitForEvents(stack.db, t.projectId, sends.length);
}

async function storedPhones(t: TestTenant) {
  const events = await stack.db
    .selectFrom("sdk_events")
    .select(["user_id", "phone_sha256", "country"])
    .where("project_id", "=", t.projectId)
    .orderBy("user_id")
    .execute();
  const users = await stack.db
    .selectFrom("sdk_users")
    .select(["user_id", "phone_sha256"])
    .where("project_id", "=", t.projectId)
    .orderBy("user_id")
    .execute();
  return { events, users };
}

describe("phones at ingest", () => {
  test("0049 … (US device), +49 … and 0170 … with phoneCountry de are stored under one hash", async () => {
    const t = await createTenant(stack.db);
    await ingestPhones(t);
    const { events, users } = await storedPhones(t);
    expect(events).toEqual([
      { user_id: "de-intl-00", phone_sha256: sha256(DE_DIGITS), country: "US" },
      { user_id: "de-intl-plus", phone_sha256: sha256(DE_DIGITS), country: "DE" },
      // phoneCountry steers the phone only: the stored country stays the request's geo country.
      { user_id: "de-national", phone_sha256: sha256(DE_DIGITS), country: "US" },
      { user_id: "us-national", phone_sha256: sha256(US_DIGITS), country: "US" },
    ]);
    expect(users.map((u) => u.phone_sha256)).toEqual([
      sha256(DE_DIGITS),
      sha256(DE_DIGITS),
      sha256(DE_DIGITS),
      sha256(US_DIGITS),
    ]);
  });

  test("an unknown phoneCountry refuses that event (invalid_event), the others in the batch go on", async () => {
    const t = await createTenant(stack.db);
    const response = await stack.ingest(
      {
        events: [
          { eventId: "bad", name: "identify", phone: "0170 1234567", phoneCountry: "XX" },
          { eventId: "good", name: "identify", phone: "0170 1234567", phoneCountry: "DE" },
        ],
      },
      { key: t.sdkKey },
    );
    expect(response.status).toBe(202);
    const body = (await response.json()) as { accepted: number; rejected: { index: number; code: string }[] };
    expect(body).toMatchObject({ accepted: 1, rejected: [{ index: 0, code: "invalid_event" }] });
  });
});

describe("lookup and deletion by a raw phone with phoneCountry", () => {
  test("the national form with phoneCountry finds the users stored from the international forms", async () => {
    const t = await createTenant(stack.db);
    const secret = await ownerKey(stack, t, "developer");
    await ingestPhones(t);
    const lookup = async (body: unknown) => {
      const r = await call(stack, secret, "POST", `/v1/projects/${t.projectId}/users/lookup`, body);
      expect(r.status, JSON.stringify(body)).toBe(200);
      return (r.body.data as { userId: string }[]).map((m) => m.userId).sort();
    };
    const DE_USERS = ["de-intl-00", "de-intl-plus", "de-national"];

    expect(await lookup({ phone: "0170 1234567", phoneCountry: "DE" })).toEqual(DE_USERS);
    expect(await lookup({ phone: "0170/123 45 67", phoneCountry: "de" })).toEqual(DE_USERS);
    expect(await lookup({ phone: "0049 170 1234567" })).toEqual(DE_USERS);
    expect(await lookup({ phone: "+49 (0)170 1234567" })).toEqual(DE_USERS);
    expect(await lookup({ phone: "650-555-1212", phoneCountry: "US" })).toEqual(["us-national"]);
    expect(await lookup({ phoneSha256: sha256(US_DIGITS) })).toEqual(["us-national"]);
    // Without phoneCountry a national number cannot be placed: it is hashed as its digits as sent.
    expect(await lookup({ phone: "0170 1234567" })).toEqual([]);
  });

  test("phoneCountry is validated: unknown codes, or without a raw phone → 400 invalid_request", async () => {
    const t = await createTenant(stack.db);
    const developer = await ownerKey(stack, t, "developer");
    const admin = await ownerKey(stack, t, "admin");
    const bad = [
      { phone: "0170 1234567", phoneCountry: "XX" },
      { phone: "0170 1234567", phoneCountry: "UK" },
      { phone: "0170 1234567", phoneCountry: "DEU" },
      { phone: "0170 1234567", phoneCountry: 49 },
      { phoneSha256: sha256(DE_DIGITS), phoneCountry: "DE" },
      { email: "a@example.com", phoneCountry: "DE" },
    ];
    for (const body of bad) {
      const lookup = await call(stack, developer, "POST", `/v1/projects/${t.projectId}/users/lookup`, body);
      expect(lookup.status, JSON.stringify(body)).toBe(400);
      expect(lookup.body.error.code).toBe("invalid_request");
      const deletion = await call(
        stack,
        admin,
        "POST",
        `/v1/projects/${t.projectId}/deletion-requests`,
        body,
      );
      expect(deletion.status, JSON.stringify(body)).toBe(400);
      expect(deletion.body.error.code).toBe("invalid_request");
    }
  });

  test("a deletion by the national form with phoneCountry erases the rows stored from every form", async () => {
    const t = await createTenant(stack.db);
    const secret = await ownerKey(stack, t, "admin");
    await ingestPhones(t);
    const rawPhone = "0170 123 4567";
    const created = await call(
      stack,
      secret,
      "POST",
      `/v1/projects/${t.projectId}/deletion-requests`,
      { phone: rawPhone, phoneCountry: "DE" },
      { "Idempotency-Key": `phones-${t.projectId}` },
    );
    expect(created.status).toBe(202);
    expect(created.body.subject).toEqual({
      userIdSha256: null,
      emailSha256: null,
      phoneSha256: sha256(DE_DIGITS),
    });

    await runCron(stack, new Date(Date.now() + 5 * 60_000));
    const { events, users } = await storedPhones(t);
    expect(events.map((e) => e.user_id)).toEqual(["us-national"]);
    expect(users.map((u) => u.user_id)).toEqual(["us-national"]);

    // The raw number reached no log, request log, audit row or idempotency row.
    await new Promise((resolve) => setTimeout(resolve, 300)); // request-log rows are written after the answer
    const needles = [rawPhone, "01701234567", "1701234567", "170 123 4567"];
    expectNoPlaintext(stack.logs.join("\n"), needles);
    const stored = JSON.stringify([
      await stack.db.selectFrom("request_logs").selectAll().where("org_id", "=", t.orgId).execute(),
      await stack.db.selectFrom("audit_log").selectAll().where("org_id", "=", t.orgId).execute(),
      await stack.db.selectFrom("idempotency_keys").selectAll().where("org_id", "=", t.orgId).execute(),
      await stack.db.selectFrom("deletion_requests").selectAll().where("org_id", "=", t.orgId).execute(),
    ]);
    expectNoPlaintext(stored, needles);
  });
});
