import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import path from "node:path";
import { Miniflare, type WorkerOptions } from "miniflare";
import { unstable_getMiniflareWorkerOptions } from "wrangler";
import { parseKeyring } from "../../functions/destinations/crypto";
import { emitWebhookEvent } from "../../functions/webhooks/outbox";
import type { WebhookQueueMessage } from "../../functions/webhooks/queueMessage";
import { encryptWebhookSecret } from "../../functions/webhooks/secrets";
import { sendWebhook } from "../../functions/webhooks/send";
import { generateWebhookSecret } from "../../functions/webhooks/sign";
import { bundleWorker, ROOT } from "../../scripts/local/bundle";
import { roleUrl } from "../../scripts/local/migrate";
import { createNodeDb } from "../../scripts/local/node-db";
import { startWsBridge } from "../../scripts/local/ws-bridge";
import { type Db, withTenant } from "../../shared/db";
import { newId } from "../../shared/ids";
import { createTenant } from "../support/tenant";
import type { Resources } from "./resources";

export interface WebhooksBenchOptions {
  ownerUrl: string;
  /** Deliveries per side and round. */
  deliveries: number;
  rounds: number;
}

export interface WebhooksFigures {
  worker: { deliveries: number; elapsedMs: number; perSecond: number };
  direct: { deliveries: number; elapsedMs: number; perSecond: number };
  ratio: number;
  inFlight: number;
}

export const WEBHOOKS_TARGET = 0.5;

/** The bench's own keyring (32 zero bytes): the bench runs outside vitest, so not the test stack's. */
const BENCH_KEYRING = {
  DESTINATION_KEYS: JSON.stringify({ bench: "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=" }),
  DESTINATION_KEY_ID: "bench",
};

/** `n` committed outbox messages to one endpoint, in transactions of 500 (setup, not measured). */
async function outbox(db: Db, orgId: string, n: number): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < n; i += 500) {
    await withTenant(db, orgId, async (tx) => {
      for (let j = i; j < Math.min(n, i + 500); j += 1) {
        const id = await emitWebhookEvent(tx, {
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
        });
        if (id) ids.push(id);
      }
    });
  }
  return ids;
}

/**
 * (j) Webhook fan-out: deliveries per second from the "layers-webhooks" queue through the webhooks Worker in
 * workerd (claim and record in Postgres, secrets decrypted, Standard Webhooks signature, the POST, the
 * attempt log) to a local receiver answering 204, against the same number of signed POSTs made straight from
 * Node by sendWebhook with as many in flight as one Worker invocation may have (min of max_batch_size and
 * WEBHOOK_CONCURRENT_SENDS). Rounds
 * alternate sides.
 */
export async function benchWebhooks(
  resources: Resources,
  options: WebhooksBenchOptions,
): Promise<WebhooksFigures> {
  let received = 0;
  const server = createServer((req, res) => {
    req.resume();
    req.on("end", () => {
      received += 1;
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  resources.add("webhook receiver", () => new Promise<void>((resolve) => server.close(() => resolve())));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;

  const ownerDb = createNodeDb(options.ownerUrl, 2);
  resources.add("owner db (webhooks)", () => ownerDb.destroy());
  const tenant = await createTenant(ownerDb);
  const secret = generateWebhookSecret();
  const endpointId = newId("whe");
  const sealed = await encryptWebhookSecret(parseKeyring(BENCH_KEYRING), secret, {
    orgId: tenant.orgId,
    endpointId,
  });
  await withTenant(ownerDb, tenant.orgId, (tx) =>
    tx
      .insertInto("webhook_endpoints")
      .values({
        id: endpointId,
        org_id: tenant.orgId,
        url,
        secret_ciphertext: sealed.ciphertext,
        secret_key_id: sealed.keyId,
      })
      .execute(),
  );

  const target = new URL(options.ownerUrl);
  const bridge = await startWsBridge({ host: target.hostname, port: Number(target.port || 5432) });
  resources.add("ws bridge (webhooks)", () => bridge.close());
  const config = unstable_getMiniflareWorkerOptions(path.join(ROOT, "workers/webhooks/wrangler.toml"))
    .workerOptions as WorkerOptions;
  const queue = ((config.queueConsumers ?? {}) as Record<string, { maxBatchSize?: number }>)[
    "layers-webhooks"
  ];
  // One invocation has at most WEBHOOK_CONCURRENT_SENDS answers pending (Cloudflare's 6-connection limit,
  // functions/webhooks/deliver.ts); the plain loop gets the same, or fewer if a batch is smaller.
  const concurrentSends = Number(
    (config.bindings as Record<string, unknown> | undefined)?.WEBHOOK_CONCURRENT_SENDS ?? 6,
  );
  const inFlight = Math.min(queue?.maxBatchSize ?? 10, concurrentSends);
  const mf = new Miniflare({
    workers: [
      {
        ...config,
        name: "webhooks",
        modules: true,
        scriptPath: await bundleWorker("workers/webhooks/index.ts", "bench-webhooks"),
        bindings: {
          ...config.bindings,
          DATABASE_URL: roleUrl(options.ownerUrl, "layers_webhooks"),
          NEON_WS_PROXY: `127.0.0.1:${bridge.port}/v1`,
          WEBHOOK_ALLOW_LOCAL_HTTP: "true",
          ...BENCH_KEYRING,
        },
        // No batch timeout: with a backlog Cloudflare hands over the next full batch at once.
        queueConsumers: { "layers-webhooks": { ...queue, maxBatchTimeout: 0 } },
      },
      {
        name: "producer",
        modules: true,
        // Puts the messages on the queue from inside workerd, as the Cron sweep does.
        script: `export default { async fetch(request, env) {
          const messages = await request.json();
          for (let i = 0; i < messages.length; i += 100) {
            await env.WEBHOOKS_QUEUE.sendBatch(messages.slice(i, i + 100).map((body) => ({ body, contentType: "json" })));
          }
          return new Response("queued");
        } }`,
        compatibilityDate: "2026-04-20",
        queueProducers: { WEBHOOKS_QUEUE: "layers-webhooks" },
      },
    ],
    handleStructuredLogs: () => {},
    structuredWorkerdLogs: true,
  });
  resources.add("miniflare (webhooks)", () => mf.dispose());
  await mf.ready;
  const producer = await mf.getWorker("producer");

  const total = { worker: { n: 0, ms: 0 }, direct: { n: 0, ms: 0 } };
  for (let round = 0; round < options.rounds; round++) {
    for (const side of round % 2 === 0 ? (["worker", "direct"] as const) : (["direct", "worker"] as const)) {
      const ids = await outbox(ownerDb, tenant.orgId, options.deliveries);
      const want = received + ids.length;
      if (side === "worker") {
        const messages: WebhookQueueMessage[] = ids.map((messageId) => ({
          v: 1,
          orgId: tenant.orgId,
          messageId,
          endpointId,
          attempts: 0,
        }));
        const started = performance.now();
        const queued = await producer.fetch("http://producer/", {
          method: "POST",
          body: JSON.stringify(messages),
        });
        if (!queued.ok) throw new Error(`webhooks producer answered ${queued.status}`);
        await queued.text();
        while (received < want) await new Promise((resolve) => setTimeout(resolve, 5));
        // Done when the last attempt is recorded, not only sent.
        for (;;) {
          const row = await ownerDb
            .selectFrom("webhook_deliveries")
            .select((eb) => eb.fn.countAll<string>().as("n"))
            .where("org_id", "=", tenant.orgId)
            .where("status", "=", "pending")
            .where("message_id", "in", ids)
            .executeTakeFirst();
          if (Number(row?.n ?? 0) === 0) break;
          await new Promise((resolve) => setTimeout(resolve, 5));
        }
        total.worker.ms += performance.now() - started;
        total.worker.n += ids.length;
      } else {
        const bodies = ids.map((id) => ({
          id,
          body: JSON.stringify({ type: "api_key.created", data: { id } }),
        }));
        const started = performance.now();
        let next = 0;
        await Promise.all(
          Array.from({ length: inFlight }, async () => {
            while (next < bodies.length) {
              const item = bodies[next++];
              if (!item) break;
              const result = await sendWebhook({
                url,
                secrets: [secret],
                messageId: item.id,
                timestamp: new Date(),
                body: item.body,
                timeoutMs: 15_000,
                allowLocalHttp: true,
              });
              if (result.statusCode !== 204) throw new Error(`receiver answered ${result.statusCode}`);
            }
          }),
        );
        total.direct.ms += performance.now() - started;
        total.direct.n += ids.length;
        // These messages were never for the Worker: close them so nothing sends them later.
        await ownerDb
          .updateTable("webhook_deliveries")
          .set({ status: "succeeded" })
          .where("message_id", "in", ids)
          .execute();
      }
    }
  }
  const rate = (s: { n: number; ms: number }) => (s.n / s.ms) * 1000;
  return {
    worker: { deliveries: total.worker.n, elapsedMs: total.worker.ms, perSecond: rate(total.worker) },
    direct: { deliveries: total.direct.n, elapsedMs: total.direct.ms, perSecond: rate(total.direct) },
    ratio: rate(total.worker) / rate(total.direct),
    inFlight,
  };
}

export function webhooksLines(f: WebhooksFigures, options: WebhooksBenchOptions): string {
  const int = (n: number) => Math.round(n).toLocaleString("en-US");
  const pass = f.ratio >= WEBHOOKS_TARGET ? "PASS" : "MISS";
  return [
    `(j) webhooks to a local receiver, ≤ ${f.inFlight} POSTs in flight: queue → webhooks Worker ` +
      `${int(f.worker.perSecond)} deliveries/s | signed fetch loop ${int(f.direct.perSecond)}/s | ` +
      `ratio ${f.ratio.toFixed(2)} (target ≥ ${WEBHOOKS_TARGET}) ${pass}`,
    `    ${int(f.worker.deliveries)} deliveries per side over ${options.rounds} alternating rounds (each claimed, ` +
      "signed, sent and recorded in Postgres on the Worker side; signed and sent only on the other)",
  ].join("\n");
}
