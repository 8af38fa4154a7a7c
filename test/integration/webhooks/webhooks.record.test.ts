import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { deliverWebhook, deliverWebhooks } from "../../../functions/webhooks/deliver";
import { emitWebhookEvent } from "../../../functions/webhooks/outbox";
import type { WebhookQueueMessage } from "../../../functions/webhooks/queueMessage";
import { encryptWebhookSecret } from "../../../functions/webhooks/secrets";
import { generateWebhookSecret } from "../../../functions/webhooks/sign";
import { requeueDelivery } from "../../../functions/webhooks/store";
import { roleUrl } from "../../../scripts/local/migrate";
import { createNodeDb } from "../../../scripts/local/node-db";
import { type Db, withTenant } from "../../../shared/db";
import { newId } from "../../../shared/ids";
import { createApiTenant } from "../../support/apiTenant";
import { testDatabaseUrl } from "../../support/database";

// The webhooks Worker's record step, decided directly as the layers_webhooks role with the receiver's
// answers injected: when a later attempt of the same delivery overtook an earlier one (a re-send while an
// attempt still waited for its receiver), the earlier answer is logged but does not overwrite the state the
// later claim owns; and whatever bytes a receiver answers, the attempt is recorded (an answer Postgres
// cannot store as text must not fail the record transaction, and with it the org's whole batch).

let owner: Db;
let webhooks: Db;
beforeAll(() => {
  owner = createNodeDb(testDatabaseUrl(), 2);
  webhooks = createNodeDb(roleUrl(testDatabaseUrl(), "layers_webhooks"), 2);
});
afterAll(async () => {
  await owner?.destroy();
  await webhooks?.destroy();
});

const keyring = { currentKeyId: "k1", keys: { k1: Buffer.alloc(32, 7).toString("base64") } };

/** One event for `n` endpoints of a new org: a pending delivery to each (endpoint i at /hook-i). */
async function pendingDeliveries(n: number): Promise<WebhookQueueMessage[]> {
  const { orgId } = await createApiTenant(owner);
  const endpointIds = Array.from({ length: n }, () => newId("whe"));
  await withTenant(owner, orgId, async (tx) => {
    for (const [i, endpointId] of endpointIds.entries()) {
      const sealed = await encryptWebhookSecret(keyring, generateWebhookSecret(), { orgId, endpointId });
      await tx
        .insertInto("webhook_endpoints")
        .values({
          id: endpointId,
          org_id: orgId,
          url: `http://127.0.0.1:9/hook-${i}`,
          secret_ciphertext: sealed.ciphertext,
          secret_key_id: sealed.keyId,
        })
        .execute();
    }
    await emitWebhookEvent(tx, {
      orgId,
      type: "api_key.created",
      payload: { apiKeyId: newId("key"), role: "admin", mode: "live", projectId: null, link: "/v1/api-keys" },
      now: new Date(),
    });
  });
  const rows = await owner
    .selectFrom("webhook_deliveries")
    .select(["message_id", "endpoint_id"])
    .where("org_id", "=", orgId)
    .execute();
  return endpointIds.map((endpointId) => ({
    v: 1,
    orgId,
    messageId: rows.find((r) => r.endpoint_id === endpointId)?.message_id ?? "",
    endpointId,
    attempts: 0,
  }));
}

const pendingDelivery = async () => (await pendingDeliveries(1))[0] as WebhookQueueMessage;

const options = (fetch: (url: string, init: RequestInit) => Promise<Response>) => ({
  keyring,
  schedule: [0, 0, 0],
  leaseSeconds: 300,
  timeoutMs: 5_000,
  concurrentSends: 6,
  allowLocalHttp: true,
  now: () => new Date(),
  fetch,
});

describe("an attempt overtaken by a later one of the same delivery", () => {
  it("a 2xx recorded by the later attempt stands when the earlier attempt's failure is recorded after it", async () => {
    const m = await pendingDelivery();
    let calls = 0;
    const outcome = await deliverWebhook(
      webhooks,
      m,
      options(async () => {
        calls += 1;
        // While the receiver holds this first attempt, the partner re-sends the message and the sweep
        // enqueues it with the count it now has; that second attempt gets a 2xx.
        await withTenant(owner, m.orgId, (tx) => requeueDelivery(tx, m.endpointId, m.messageId, new Date()));
        const second = await deliverWebhook(
          webhooks,
          { ...m, attempts: 1 },
          options(async () => {
            calls += 1;
            return new Response("ok", { status: 200 });
          }),
        );
        expect(second.kind).toBe("succeeded");
        return new Response("busy", { status: 503 });
      }),
    );
    expect(calls).toBe(2);
    expect(outcome.kind).not.toBe("retry");
    const delivery = await owner
      .selectFrom("webhook_deliveries")
      .select(["status", "attempts", "last_status_code"])
      .where("message_id", "=", m.messageId)
      .where("endpoint_id", "=", m.endpointId)
      .executeTakeFirstOrThrow();
    // Succeeded: nothing more is sent after the receiver's 2xx.
    expect(delivery).toEqual({ status: "succeeded", attempts: 2, last_status_code: 200 });
    const attempts = await owner
      .selectFrom("webhook_attempts")
      .select("status_code")
      .where("message_id", "=", m.messageId)
      .orderBy("status_code")
      .execute();
    expect(attempts.map((a) => a.status_code)).toEqual([200, 503]);
  });
});

describe("whatever a receiver answers", () => {
  it("records an answer holding NUL bytes (Postgres text refuses them), and the batch's other deliveries", async () => {
    const batch = await pendingDeliveries(2);
    const results = await deliverWebhooks(
      webhooks,
      batch,
      options(async (url) =>
        url.endsWith("/hook-0")
          ? new Response("ok\u0000\u0000done", { status: 200 })
          : new Response("fine", { status: 200 }),
      ),
    );
    expect(results.map((r) => (r.status === "fulfilled" ? r.value.kind : r.reason))).toEqual([
      "succeeded",
      "succeeded",
    ]);
    const attempts = await owner
      .selectFrom("webhook_attempts")
      .select(["endpoint_id", "status_code", "response_excerpt"])
      .where("org_id", "=", batch[0]?.orgId ?? "")
      .execute();
    const excerptOf = (m?: WebhookQueueMessage) =>
      attempts.find((a) => a.endpoint_id === m?.endpointId)?.response_excerpt;
    expect(excerptOf(batch[0])).toMatch(/^ok.+done$/);
    expect(excerptOf(batch[0])).not.toContain("\u0000");
    expect(excerptOf(batch[1])).toBe("fine");
  });
});

describe("a batch's sends", () => {
  it("never wait on more answers at once than the invocation may (6), and a hanging receiver spends only its own deadline", async () => {
    const batch = await pendingDeliveries(14);
    let inFlight = 0;
    let most = 0;
    const results = await deliverWebhooks(webhooks, batch, {
      ...options(async (url, init) => {
        inFlight += 1;
        most = Math.max(most, inFlight);
        try {
          if (url.endsWith("/hook-0")) {
            // Hangs until its deadline aborts it.
            await new Promise((_, reject) =>
              init.signal?.addEventListener("abort", () => reject(init.signal?.reason)),
            );
          }
          await new Promise((resolve) => setTimeout(resolve, 20));
          return new Response("ok", { status: 200 });
        } finally {
          inFlight -= 1;
        }
      }),
      timeoutMs: 300,
    });
    expect(most).toBe(6);
    const kinds = results.map((r) => (r.status === "fulfilled" ? r.value.kind : r.reason));
    expect(kinds[0]).toBe("retry");
    expect(kinds.slice(1)).toEqual(Array(13).fill("succeeded"));
  });
});
