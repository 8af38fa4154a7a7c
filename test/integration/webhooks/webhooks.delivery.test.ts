import { sql } from "kysely";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { emitWebhookEvent } from "../../../functions/webhooks/outbox";
import { withTenant } from "../../../shared/db";
import { newId } from "../../../shared/ids";
import { api } from "../../support/api";
import { createApiTenant } from "../../support/apiTenant";
import { findInTables } from "../../support/scan";
import { type Stack, startStack, waitFor } from "../../support/stack";
import { type Receiver, startReceiver, verifies } from "../../support/webhookReceiver";

// Delivery end to end: the outbox rows a change commits → the Cron sweep → the "layers-webhooks" Queue →
// the webhooks Worker in workerd → a real HTTP receiver that checks every request with the published
// `standardwebhooks` library. Time is not waited for: the retry schedule is all zeros here (each retry is
// due at once), and each "minute" is one call of the every-minute Cron trigger.

const SCHEDULE = "0,0,0,0"; // 5 attempts in all
const MINUTE = "* * * * *";

let stack: Stack;
let receiver: Receiver;

beforeAll(async () => {
  receiver = await startReceiver();
  stack = await startStack({
    apiVars: { WEBHOOK_ALLOW_LOCAL_HTTP: "true" },
    webhooksVars: {
      WEBHOOK_RETRY_SCHEDULE_SECONDS: SCHEDULE,
      WEBHOOK_TIMEOUT_MS: "500",
      WEBHOOK_LEASE_SECONDS: "60",
    },
    cronVars: { WEBHOOK_LEASE_SECONDS: "60" },
  });
});
afterAll(async () => {
  await stack?.dispose();
  await receiver?.close();
});

interface Org {
  orgId: string;
  call: ReturnType<typeof api>;
}

async function org(): Promise<Org> {
  const t = await createApiTenant(stack.db);
  return { orgId: t.orgId, call: api(stack, t.secret) };
}

interface Created {
  id: string;
  secret: string | null;
  enabled: boolean;
  disabledReason: string | null;
}

async function endpoint(
  o: Org,
  path: string,
  eventTypes: string[] = [],
): Promise<{ id: string; secret: string }> {
  const res = await o.call.post<unknown, Created>("/v1/webhook-endpoints", {
    url: receiver.url(path),
    eventTypes,
  });
  expect(res.status).toBe(201);
  const secret = res.body.secret as string;
  receiver.secrets.set(path, [secret]);
  return { id: res.body.id, secret };
}

/** `n` changes, each its own committed transaction writing one api_key.created event to the outbox. */
async function changes(orgId: string, n: number): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < n; i += 1) {
    const id = await withTenant(stack.db, orgId, (tx) =>
      emitWebhookEvent(tx, {
        orgId,
        type: "api_key.created",
        payload: {
          apiKeyId: newId("key"),
          role: "developer",
          mode: "live",
          projectId: null,
          link: "/v1/api-keys",
        },
        now: new Date(),
      }),
    );
    if (id) ids.push(id);
  }
  return ids;
}

/** Pending deliveries of `orgId` that a Worker holds (leased: put on the Queue, or mid-attempt). */
async function inFlight(orgId: string): Promise<number> {
  const { rows } = await sql<{ n: string }>`
    select count(*) as n from webhook_deliveries
    where org_id = ${orgId} and status = 'pending' and next_attempt_at > now() + interval '5 seconds'`.execute(
    stack.db,
  );
  return Number(rows[0]?.n ?? 0);
}

async function statuses(orgId: string): Promise<Record<string, number>> {
  const { rows } = await sql<{ status: string; n: string }>`
    select status, count(*) as n from webhook_deliveries where org_id = ${orgId} group by status`.execute(
    stack.db,
  );
  return Object.fromEntries(rows.map((r) => [r.status, Number(r.n)]));
}

/**
 * Runs the every-minute trigger and lets the Worker finish what it enqueued, until nothing of the org is
 * pending or `minutes` runs have passed.
 */
async function runMinutes(orgId: string, minutes: number): Promise<void> {
  for (let i = 0; i < minutes; i += 1) {
    const { outcome } = await stack.cron(new Date(), MINUTE);
    expect(outcome).toBe("ok");
    await waitFor(async () => ((await inFlight(orgId)) === 0 ? true : undefined), 60_000);
    if (((await statuses(orgId)).pending ?? 0) === 0) return;
  }
}

async function endpointRow(id: string) {
  return stack.db.selectFrom("webhook_endpoints").selectAll().where("id", "=", id).executeTakeFirstOrThrow();
}

describe("webhook delivery", () => {
  it("signs every delivery so the standardwebhooks library verifies it; a tampered body or a replay later fails", async () => {
    const o = await org();
    const e = await endpoint(o, "/sig");
    const [messageId] = await changes(o.orgId, 1);
    await runMinutes(o.orgId, 3);
    const [got] = receiver.received("/sig");
    expect(got).toBeDefined();
    if (!got) return;
    expect(got.id).toBe(messageId);
    expect(got.signatures).toHaveLength(1);
    expect(got.verifiedWith[e.secret]).toBe(true);
    expect(JSON.parse(got.body)).toMatchObject({ type: "api_key.created", data: { role: "developer" } });
    expect(verifies(e.secret, { ...got, body: got.body.replace("developer", "owner") })).toBe(false);
    // The same genuine request replayed ten minutes later: the library refuses its timestamp.
    vi.useFakeTimers({ now: Number(got.timestamp) * 1000 + 10 * 60_000, toFake: ["Date"] });
    try {
      expect(verifies(e.secret, got)).toBe(false);
    } finally {
      vi.useRealTimers();
    }
    expect(await statuses(o.orgId)).toEqual({ succeeded: 1 });
  });

  it("signs with both secrets during a rotation's grace period, then with the new one only", async () => {
    const o = await org();
    const e = await endpoint(o, "/rot");
    const rotated = await o.call.post<unknown, Created>(`/v1/webhook-endpoints/${e.id}/rotate-secret`, {
      gracePeriodSeconds: 3600,
    });
    expect(rotated.status).toBe(201);
    const next = rotated.body.secret as string;
    receiver.secrets.set("/rot", [e.secret, next]);
    await changes(o.orgId, 1);
    await runMinutes(o.orgId, 3);
    const during = receiver.received("/rot").at(-1);
    expect(during?.signatures).toHaveLength(2);
    // A receiver holding only the old secret, and one holding only the new one, both accept it.
    expect(during?.verifiedWith).toEqual({ [e.secret]: true, [next]: true });

    // The grace period has passed (the row says so, as it would a day later).
    await stack.db
      .updateTable("webhook_endpoints")
      .set({ previous_secret_expires_at: new Date(Date.now() - 1000) })
      .where("id", "=", e.id)
      .execute();
    await changes(o.orgId, 1);
    await runMinutes(o.orgId, 3);
    const after = receiver.received("/rot").at(-1);
    expect(after?.id).not.toBe(during?.id);
    expect(after?.signatures).toHaveLength(1);
    expect(after?.verifiedWith).toEqual({ [e.secret]: false, [next]: true });
  });

  it("1,000 changes → 1,000 deliveries through 500s and timeouts, none lost, repeats only of a failed webhook-id", async () => {
    const o = await org();
    await endpoint(o, "/flaky");
    // The receiver is down for its first 1,500 requests: every fifth hangs past the 500 ms deadline, the
    // others answer 500. Then it recovers.
    receiver.behave("/flaky", (n) =>
      n > 1500 ? { status: 204 } : n % 5 === 0 ? { hang: true } : { status: 500 },
    );
    // A change that rolls back writes no event, so it is never sent.
    await expect(
      withTenant(stack.db, o.orgId, async (tx) => {
        await emitWebhookEvent(tx, {
          orgId: o.orgId,
          type: "api_key.created",
          payload: {
            apiKeyId: "key_rolledback",
            role: "owner",
            mode: "live",
            projectId: null,
            link: "/v1/api-keys",
          },
          now: new Date(),
        });
        throw new Error("the change fails");
      }),
    ).rejects.toThrow("the change fails");
    const ids = await changes(o.orgId, 1000);
    expect(new Set(ids).size).toBe(1000);

    await runMinutes(o.orgId, 8);
    expect(await statuses(o.orgId)).toEqual({ succeeded: 1000 });

    const got = receiver.received("/flaky");
    expect(got.some((r) => r.body.includes("key_rolledback"))).toBe(false);
    // Every change arrived with a success, and nothing arrived that was not a change.
    expect(new Set(got.filter((r) => r.answered === 204).map((r) => r.id))).toEqual(new Set(ids));
    expect(new Set(got.map((r) => r.id))).toEqual(new Set(ids));
    expect(got.length).toBeGreaterThan(1500);
    // Every request was verified by the library, retries included.
    expect(got.every((r) => Object.values(r.verifiedWith).every(Boolean))).toBe(true);
    // One request per recorded attempt; a webhook-id came again only after an attempt we recorded as
    // failed (a 500, or no answer within the deadline: a 2xx that came too late counts as none), and its
    // last attempt is the success. Nothing else repeats.
    const attempts = await stack.db
      .selectFrom("webhook_attempts")
      .select(["message_id", "attempted_at", "error_code", "status_code"])
      .where("org_id", "=", o.orgId)
      .orderBy("attempted_at")
      .execute();
    expect(attempts).toHaveLength(got.length);
    const byId = new Map<string, typeof attempts>();
    for (const a of attempts) byId.set(a.message_id ?? "", [...(byId.get(a.message_id ?? "") ?? []), a]);
    for (const id of ids) {
      const tries = byId.get(id) ?? [];
      expect(got.filter((r) => r.id === id)).toHaveLength(tries.length);
      expect(tries.slice(0, -1).every((a) => a.error_code !== null)).toBe(true);
      expect(tries.at(-1)).toMatchObject({ error_code: null, status_code: 204 });
    }
    const hung = got.filter((r) => r.answered === null).length;
    expect(attempts.filter((a) => a.error_code === "timeout").length).toBeGreaterThanOrEqual(hung);
  }, 300_000);

  it("410 Gone disables the endpoint and tells the org's other endpoints", async () => {
    const o = await org();
    const gone = await endpoint(o, "/gone", ["api_key.created"]);
    await endpoint(o, "/watcher", ["webhook_endpoint.disabled"]);
    receiver.behave("/gone", () => ({ status: 410, body: "gone" }));
    await changes(o.orgId, 1);
    await runMinutes(o.orgId, 4);
    expect(receiver.received("/gone")).toHaveLength(1);
    const row = await endpointRow(gone.id);
    expect(row).toMatchObject({ enabled: false, disabled_reason: "gone" });
    const shown = await o.call.get<Created>(`/v1/webhook-endpoints/${gone.id}`);
    expect(shown.body).toMatchObject({ enabled: false, disabledReason: "gone" });
    const told = receiver.received("/watcher");
    expect(told).toHaveLength(1);
    expect(JSON.parse(told[0]?.body ?? "{}")).toMatchObject({
      type: "webhook_endpoint.disabled",
      data: { webhookEndpointId: gone.id, reason: "gone" },
    });
    // Nothing more is sent to it.
    await changes(o.orgId, 2);
    await runMinutes(o.orgId, 2);
    expect(receiver.received("/gone")).toHaveLength(1);
  });

  it("a delivery failing its whole schedule, with nothing reaching the endpoint, disables it (failing)", async () => {
    const o = await org();
    const down = await endpoint(o, "/down", ["api_key.created"]);
    await endpoint(o, "/watcher2", ["webhook_endpoint.disabled"]);
    receiver.behave("/down", () => ({ status: 503 }));
    await changes(o.orgId, 1);
    await runMinutes(o.orgId, 10);
    // The first attempt and one per scheduled delay.
    expect(receiver.received("/down")).toHaveLength(SCHEDULE.split(",").length + 1);
    expect(await endpointRow(down.id)).toMatchObject({ enabled: false, disabled_reason: "failing" });
    expect(JSON.parse(receiver.received("/watcher2")[0]?.body ?? "{}")).toMatchObject({
      type: "webhook_endpoint.disabled",
      data: { webhookEndpointId: down.id, reason: "failing" },
    });
    const audit = await stack.db
      .selectFrom("audit_log")
      .select(["action", "actor_type"])
      .where("org_id", "=", o.orgId)
      .where("resource_id", "=", down.id)
      .where("action", "=", "webhook_endpoint.disabled")
      .execute();
    expect(audit).toEqual([{ action: "webhook_endpoint.disabled", actor_type: "system" }]);
  });

  it("does not follow a redirect and reads a large answer only up to the cap", async () => {
    const o = await org();
    const redirect = await endpoint(o, "/redirect");
    const huge = await endpoint(o, "/huge");
    receiver.behave("/redirect", () => ({
      status: 302,
      headers: { location: receiver.url("/redirect-target") },
    }));
    receiver.behave("/huge", () => ({ stream: { status: 200, bytes: 100 * 1024 * 1024 } }));
    await changes(o.orgId, 1);
    await runMinutes(o.orgId, 2);
    expect(receiver.received("/redirect-target")).toHaveLength(0);
    const attempts = await stack.db
      .selectFrom("webhook_attempts")
      .select(["endpoint_id", "status_code", "error_code", "response_excerpt"])
      .where("org_id", "=", o.orgId)
      .execute();
    const first = (id: string) => attempts.find((a) => a.endpoint_id === id);
    expect(first(redirect.id)).toMatchObject({ status_code: 302, error_code: "redirect_not_followed" });
    expect(first(huge.id)).toMatchObject({ status_code: 200, error_code: null });
    expect(Buffer.byteLength(first(huge.id)?.response_excerpt ?? "")).toBeLessThanOrEqual(256);
    expect(receiver.streamedBytes("/huge")).toBeLessThan(100 * 1024 * 1024);
  });

  it("never calls a stored URL the SSRF guard refuses (a row written under older rules)", async () => {
    const o = await org();
    const e = await endpoint(o, "/ssrf");
    for (const url of [
      "https://169.254.169.254/latest/meta-data/",
      "http://10.0.0.7/",
      "https://[::ffff:127.0.0.1]/",
    ]) {
      await stack.db.updateTable("webhook_endpoints").set({ url }).where("id", "=", e.id).execute();
      await changes(o.orgId, 1);
      await runMinutes(o.orgId, 1);
    }
    expect(receiver.received("/ssrf")).toHaveLength(0);
    const codes = await stack.db
      .selectFrom("webhook_attempts")
      .select("error_code")
      .where("endpoint_id", "=", e.id)
      .execute();
    expect(codes.length).toBeGreaterThanOrEqual(3);
    expect(new Set(codes.map((c) => c.error_code))).toEqual(new Set(["url_refused"]));
  });

  it("refuses every SSRF class at creation with a 400, and nothing is stored", async () => {
    const o = await org();
    for (const url of [
      "http://hooks.example.com/",
      "https://user:pw@hooks.example.com/",
      "https://10.0.0.1/",
      "https://127.0.0.1/",
      "https://2130706433/",
      "https://169.254.169.254/",
      "https://100.64.0.1/",
      "https://0.0.0.0/",
      "https://224.0.0.1/",
      "https://[::1]/",
      "https://[::ffff:169.254.169.254]/",
      "https://[fd00:ec2::254]/",
      "https://[fe80::1]/",
      "https://localhost/",
      "https://metadata.google.internal/",
      "https://db.internal/",
    ]) {
      const res = await o.call.post<unknown, Created>("/v1/webhook-endpoints", { url });
      expect(res.status, url).toBe(400);
    }
    const stored = await stack.db
      .selectFrom("webhook_endpoints")
      .select("id")
      .where("org_id", "=", o.orgId)
      .execute();
    expect(stored).toEqual([]);
  });

  it("keeps no signing secret in any table or log line, and no personal data in payloads", async () => {
    const secrets = [...receiver.secrets.values()].flat();
    expect(secrets.length).toBeGreaterThan(5);
    const needles = [...secrets, ...secrets.map((s) => s.slice("whsec_".length))];
    expect(await findInTables(stack.db, needles)).toEqual([]);
    for (const line of stack.logs) for (const s of needles) expect(line).not.toContain(s);
    // Payloads are the catalogue's thin shapes: ids, statuses, links; the receiver saw nothing else.
    for (const r of receiver.received()) {
      const body = JSON.parse(r.body) as { type: string; data: Record<string, unknown> };
      expect(Object.keys(body).sort()).toEqual(["data", "timestamp", "type"]);
      expect(r.body).not.toMatch(/@|whsec_|lp_live_/);
    }
  });
});
