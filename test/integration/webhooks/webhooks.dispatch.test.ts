import { sql } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { dispatchWebhooks, purgeWebhookLog } from "../../../functions/webhooks/dispatch";
import { emitWebhookEvent } from "../../../functions/webhooks/outbox";
import type { WebhookQueue, WebhookQueueMessage } from "../../../functions/webhooks/queueMessage";
import { requeueDelivery } from "../../../functions/webhooks/store";
import { roleUrl } from "../../../scripts/local/migrate";
import { createNodeDb } from "../../../scripts/local/node-db";
import { type Db, withTenant } from "../../../shared/db";
import { newId } from "../../../shared/ids";
import { createApiTenant } from "../../support/apiTenant";
import { testDatabaseUrl } from "../../support/database";

// The Cron sweep's promises, decided directly (as the layers_maintenance role, across orgs): nothing is
// marked dispatched unless the Queue took it; a delivery is not put on the Queue twice while its lease
// runs; retries go when due; the 30-day purge takes what is old and finished, and nothing pending.

let owner: Db;
let maintenance: Db;
beforeAll(() => {
  owner = createNodeDb(testDatabaseUrl(), 2);
  maintenance = createNodeDb(roleUrl(testDatabaseUrl(), "layers_maintenance"), 2);
});
afterAll(async () => {
  await owner?.destroy();
  await maintenance?.destroy();
});

/** A Queue stand-in that keeps what it is sent, or refuses everything when `down`. */
function queue(down = false): WebhookQueue & { sent: WebhookQueueMessage[] } {
  const sent: WebhookQueueMessage[] = [];
  return {
    sent,
    async sendBatch(messages) {
      if (down) throw new Error("queue unavailable");
      for (const m of messages) sent.push(m.body);
    },
  };
}

async function addEndpoint(orgId: string): Promise<string> {
  const endpointId = newId("whe");
  await withTenant(owner, orgId, (tx) =>
    tx
      .insertInto("webhook_endpoints")
      .values({
        id: endpointId,
        org_id: orgId,
        url: "https://hooks.example.com/x",
        secret_ciphertext: "x",
        secret_key_id: "k",
      })
      .execute(),
  );
  return endpointId;
}

async function orgWithEndpoint(): Promise<{ orgId: string; endpointId: string }> {
  const t = await createApiTenant(owner);
  return { orgId: t.orgId, endpointId: await addEndpoint(t.orgId) };
}

async function emit(orgId: string, now: Date): Promise<void> {
  await withTenant(owner, orgId, (tx) =>
    emitWebhookEvent(tx, {
      orgId,
      type: "api_key.created",
      payload: { apiKeyId: newId("key"), role: "admin", mode: "live", projectId: null, link: "/v1/api-keys" },
      now,
    }),
  );
}

const mine = (q: { sent: WebhookQueueMessage[] }, orgId: string) => q.sent.filter((m) => m.orgId === orgId);

describe("webhook dispatch (Cron sweep)", () => {
  it("marks nothing dispatched when the Queue refuses, and sends it on the next run", async () => {
    const { orgId, endpointId } = await orgWithEndpoint();
    const now = new Date();
    await emit(orgId, now);
    await expect(
      dispatchWebhooks(maintenance, queue(true), { now, leaseSeconds: 60, budget: 10_000 }),
    ).rejects.toThrow("queue unavailable");
    const undispatched = await owner
      .selectFrom("webhook_messages")
      .select("id")
      .where("org_id", "=", orgId)
      .where("dispatched_at", "is", null)
      .execute();
    expect(undispatched).toHaveLength(1);

    const q = queue();
    await dispatchWebhooks(maintenance, q, { now, leaseSeconds: 60, budget: 10_000 });
    expect(mine(q, orgId)).toEqual([
      { v: 1, orgId, messageId: undispatched[0]?.id, endpointId, attempts: 0 },
    ]);
    // Leased: the next minute's run does not send it again; once the lease is over (the Queue lost it, or
    // the Worker died), it does.
    const again = queue();
    await dispatchWebhooks(maintenance, again, {
      now: new Date(now.getTime() + 30_000),
      leaseSeconds: 60,
      budget: 10_000,
    });
    expect(mine(again, orgId)).toEqual([]);
    const later = queue();
    await dispatchWebhooks(maintenance, later, {
      now: new Date(now.getTime() + 61_000),
      leaseSeconds: 60,
      budget: 10_000,
    });
    expect(mine(later, orgId)).toHaveLength(1);
  });

  it("sends a retry once it is due, with the attempt count it has", async () => {
    const { orgId } = await orgWithEndpoint();
    const now = new Date();
    await emit(orgId, now);
    await dispatchWebhooks(maintenance, queue(), { now, leaseSeconds: 60, budget: 10_000 });
    const due = new Date(now.getTime() + 300_000);
    await owner
      .updateTable("webhook_deliveries")
      .set({ attempts: 2, next_attempt_at: due })
      .where("org_id", "=", orgId)
      .execute();
    const early = queue();
    await dispatchWebhooks(maintenance, early, {
      now: new Date(due.getTime() - 1000),
      leaseSeconds: 60,
      budget: 10_000,
    });
    expect(mine(early, orgId)).toEqual([]);
    const onTime = queue();
    await dispatchWebhooks(maintenance, onTime, { now: due, leaseSeconds: 60, budget: 10_000 });
    expect(mine(onTime, orgId).map((m) => m.attempts)).toEqual([2]);
  });

  it("a re-send to one endpoint puts only that delivery on the Queue; the message's others keep their schedule", async () => {
    const { orgId, endpointId: waiting } = await orgWithEndpoint();
    const resent = await addEndpoint(orgId);
    const now = new Date();
    await emit(orgId, now);
    await dispatchWebhooks(maintenance, queue(), { now, leaseSeconds: 60, budget: 10_000 });
    const [message] = await owner
      .selectFrom("webhook_messages")
      .select("id")
      .where("org_id", "=", orgId)
      .execute();
    const messageId = message?.id ?? "";
    // One endpoint waits two hours for its fourth attempt; the other gave up and is re-sent by hand.
    await owner
      .updateTable("webhook_deliveries")
      .set({ attempts: 3, next_attempt_at: new Date(now.getTime() + 2 * 3_600_000) })
      .where("endpoint_id", "=", waiting)
      .execute();
    await owner
      .updateTable("webhook_deliveries")
      .set({ status: "failed", attempts: 10 })
      .where("endpoint_id", "=", resent)
      .execute();
    const later = new Date(now.getTime() + 120_000);
    await withTenant(owner, orgId, (tx) => requeueDelivery(tx, resent, messageId, later));

    const q = queue();
    await dispatchWebhooks(maintenance, q, { now: later, leaseSeconds: 60, budget: 10_000 });
    expect(mine(q, orgId)).toEqual([{ v: 1, orgId, messageId, endpointId: resent, attempts: 10 }]);
    const kept = await owner
      .selectFrom("webhook_deliveries")
      .select("next_attempt_at")
      .where("endpoint_id", "=", waiting)
      .executeTakeFirstOrThrow();
    expect(kept.next_attempt_at?.getTime()).toBe(now.getTime() + 2 * 3_600_000);
  });

  it("purges attempts and finished messages after 30 days, never a pending delivery", async () => {
    const { orgId, endpointId } = await orgWithEndpoint();
    const old = new Date(Date.now() - 31 * 86_400_000);
    await emit(orgId, old); // stays pending
    await emit(orgId, old); // will be finished
    const rows = await owner
      .selectFrom("webhook_messages")
      .select("id")
      .where("org_id", "=", orgId)
      .orderBy("id")
      .execute();
    const [pending, done] = rows.map((r) => r.id);
    await owner
      .updateTable("webhook_deliveries")
      .set({ status: "succeeded" })
      .where("message_id", "=", done ?? "")
      .execute();
    await owner
      .insertInto("webhook_attempts")
      .values(
        [old, new Date()].map((at) => ({
          id: newId("wha"),
          org_id: orgId,
          endpoint_id: endpointId,
          message_id: pending ?? null,
          attempted_at: at,
          duration_ms: 5,
          status_code: 500,
        })),
      )
      .execute();
    const result = await purgeWebhookLog(maintenance, new Date(), { chunk: 1000, budget: 100_000 });
    expect(result.attempts).toBeGreaterThanOrEqual(1);
    const left = await owner
      .selectFrom("webhook_messages")
      .select("id")
      .where("org_id", "=", orgId)
      .execute();
    expect(left.map((r) => r.id)).toEqual([pending]);
    const { rows: attempts } = await sql<{ n: string }>`
      select count(*) as n from webhook_attempts where org_id = ${orgId}`.execute(owner);
    expect(Number(attempts[0]?.n)).toBe(1);
  });
});
