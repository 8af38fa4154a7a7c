import path from "node:path";
import { Miniflare, type WorkerOptions } from "miniflare";
import { unstable_getMiniflareWorkerOptions } from "wrangler";
import { parseKeyring } from "../../functions/destinations/crypto";
import { putDestination } from "../../functions/destinations/store";
import { buildMetaEvents } from "../../functions/relay/meta";
import { bundleWorker, ROOT } from "../../scripts/local/bundle";
import { roleUrl } from "../../scripts/local/migrate";
import { createNodeDb } from "../../scripts/local/node-db";
import { startWsBridge } from "../../scripts/local/ws-bridge";
import { withTenant } from "../../shared/db";
import { RELAY_MAX_EVENTS_PER_BATCH, type RelayEvent, type RelayMessage } from "../../shared/schemas/relay";
import { startFakePlatforms } from "../support/fakePlatforms";
import { sha256 } from "../support/sha256";
import { createTenant } from "../support/tenant";
import { BROWSER_UA, PAGE_URL } from "../support/web";
import { workerdCpuMs } from "./proc";
import type { Resources } from "./resources";

export interface RelayBenchOptions {
  ownerUrl: string;
  /** Events per side and round. */
  events: number;
  eventsPerBatch: number;
  rounds: number;
}

export interface RelayFigures {
  relay: { events: number; elapsedMs: number; eventsPerSecond: number };
  direct: { events: number; elapsedMs: number; eventsPerSecond: number };
  ratio: number;
  /** Requests the fake answered 200 on the relay side (one per batch; more means retries). */
  relayRequests: number;
  inFlight: number;
  /** workerd's CPU (relay and producer Workers, the local queue) per 1,000 relayed events; Linux only. */
  workerdCpuMsPer1000?: number;
  /** Of that, putting the messages on the queue (the producer Worker's sendBatch calls). */
  enqueueCpuMsPer1000?: number;
}

export const RELAY_TARGET = 0.7;

/** The direct side posts what the platform takes at most per call: 1,000 events. */
function callChunks(events: RelayEvent[]): RelayEvent[][] {
  const out: RelayEvent[][] = [];
  for (let i = 0; i < events.length; i += RELAY_MAX_EVENTS_PER_BATCH)
    out.push(events.slice(i, i + RELAY_MAX_EVENTS_PER_BATCH));
  return out;
}

/** The bench's own token keyring (32 zero bytes): the bench runs outside vitest, so not the test stack's. */
const BENCH_KEYRING = {
  DESTINATION_KEYS: JSON.stringify({ bench: "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=" }),
  DESTINATION_KEY_ID: "bench",
};

function relayEvents(prefix: string, count: number): RelayEvent[] {
  const now = new Date().toISOString();
  return Array.from({ length: count }, (_, i) => ({
    eventId: `${prefix}-${i}`,
    name: "purchase",
    userId: `user-${i % 5000}`,
    timestamp: now,
    appId: null,
    os: "Windows",
    osVersion: null,
    deviceModel: null,
    browser: "Chrome",
    country: "DE",
    emailSha256: sha256(`user${i}@example.com`),
    phoneSha256: null,
    phoneE164Sha256: null,
    properties: { value: i % 100, currency: "EUR", content_ids: [`sku-${i % 50}`] },
    consentAds: true,
    // Website events: Meta requires both (without them every event would be skipped, not sent).
    userAgent: BROWSER_UA,
    pageUrl: PAGE_URL,
  }));
}

/**
 * (f) Relay throughput: events per second from the relay queue to a local fake Meta (the relay Worker in
 * workerd: destination and token from Postgres, per-event validation and hashing, the HTTP call, the
 * delivery-log write), against the same fake receiving the same batches pre-built, posted straight from
 * Node with as many calls in flight. Rounds alternate sides; fresh event ids every round.
 */
export async function benchRelay(resources: Resources, options: RelayBenchOptions): Promise<RelayFigures> {
  const fakes = await startFakePlatforms();
  resources.add("fake platforms", () => fakes.close());
  const ownerDb = createNodeDb(options.ownerUrl, 2);
  resources.add("owner db (relay)", () => ownerDb.destroy());
  const tenant = await createTenant(ownerDb);
  const keyring = parseKeyring(BENCH_KEYRING);
  const datasetId = "bench-dataset";
  const token = "EAAbenchtoken";
  fakes.meta.tokens.set(datasetId, token);
  await withTenant(ownerDb, tenant.orgId, (tx) =>
    putDestination(
      tx,
      tenant.orgId,
      tenant.projectId,
      {
        kind: "meta",
        enabled: true,
        datasetId,
        accessToken: token,
        testEventCode: null,
        sendDeviceIds: false,
      },
      keyring,
      new Date(),
    ),
  );

  const target = new URL(options.ownerUrl);
  const bridge = await startWsBridge({ host: target.hostname, port: Number(target.port || 5432) });
  resources.add("ws bridge (relay)", () => bridge.close());
  const relay = unstable_getMiniflareWorkerOptions(path.join(ROOT, "workers/relay/wrangler.toml"))
    .workerOptions as WorkerOptions;
  const relayQueue = ((relay.queueConsumers ?? {}) as Record<string, { maxBatchSize?: number }>)[
    "layers-relay"
  ];
  // Both sides keep as many platform calls in flight as one relay invocation makes (max_batch_size).
  const inFlight = relayQueue?.maxBatchSize ?? 10;
  const mf = new Miniflare({
    workers: [
      {
        ...relay,
        name: "relay",
        modules: true,
        scriptPath: await bundleWorker("workers/relay/index.ts", "bench-relay"),
        bindings: {
          ...relay.bindings,
          DATABASE_URL: roleUrl(options.ownerUrl, "layers_relay"),
          NEON_WS_PROXY: `127.0.0.1:${bridge.port}/v1`,
          ...BENCH_KEYRING,
          ...fakes.vars,
        },
        // Same batch size as wrangler.toml. No batch timeout: with a backlog Cloudflare hands over the next
        // full batch at once, while Miniflare would wait max_batch_timeout (1 s) between batches.
        queueConsumers: {
          "layers-relay": { ...relayQueue, maxBatchTimeout: 0 },
        },
      },
      {
        name: "producer",
        modules: true,
        // Puts the posted messages on the relay queue from inside workerd, as the consumer does (Node's
        // getQueueProducer goes through Miniflare's proxy, which would be measured instead).
        script: `export default { async fetch(request, env) {
          const messages = await request.json();
          let batch = [], bytes = 0;
          for (const body of messages) {
            const size = JSON.stringify(body).length;
            if (batch.length && bytes + size > 250 * 1024) { await env.RELAY_QUEUE.sendBatch(batch); batch = []; bytes = 0; }
            batch.push({ body, contentType: "json" }); bytes += size;
          }
          if (batch.length) await env.RELAY_QUEUE.sendBatch(batch);
          return new Response("queued");
        } }`,
        compatibilityDate: "2026-04-20",
        queueProducers: { RELAY_QUEUE: "layers-relay" },
      },
    ],
    // The relay logs one line per batch; the bench's stdout is the report.
    handleStructuredLogs: () => {},
    structuredWorkerdLogs: true,
  });
  resources.add("miniflare (relay)", () => mf.dispose());
  await mf.ready;
  const producer = await mf.getWorker("producer");

  const batches = Math.ceil(options.events / options.eventsPerBatch);
  const total = { relay: { events: 0, ms: 0 }, direct: { events: 0, ms: 0 } };
  const relayRequestsBefore = () => fakes.meta.requests.filter((r) => r.status === 200).length;
  let relayRequests = 0;
  let workerdCpu: number | undefined = 0;
  let enqueueCpu = 0;

  for (let round = 0; round < options.rounds; round++) {
    for (const side of round % 2 === 0 ? (["relay", "direct"] as const) : (["direct", "relay"] as const)) {
      const events = relayEvents(`${side}-${round}`, batches * options.eventsPerBatch);
      const chunks = Array.from({ length: batches }, (_, b) =>
        events.slice(b * options.eventsPerBatch, (b + 1) * options.eventsPerBatch),
      );
      const want = fakes.meta.accepted.size + events.length;
      if (side === "relay") {
        const messages: RelayMessage[] = chunks.map((chunk, b) => ({
          v: 1,
          batchId: `rb_bench_${round}_${b}`,
          orgId: tenant.orgId,
          projectId: tenant.projectId,
          destination: "meta",
          enqueuedAt: new Date().toISOString(),
          events: chunk,
        }));
        const before = relayRequestsBefore();
        const cpuBefore = workerdCpuMs();
        const queued = await producer.fetch("http://producer/", {
          method: "POST",
          body: JSON.stringify(messages),
        });
        if (!queued.ok) throw new Error(`relay producer answered ${queued.status}`);
        await queued.text();
        enqueueCpu += (workerdCpuMs() ?? 0) - (cpuBefore ?? 0);
        // The clock starts once the batches are on the relay queue: putting them there is the consumer's
        // work (measured with it), and Miniflare delivers the first batch only after the producer is done.
        const started = performance.now();
        // Any event already delivered while enqueueing is not counted (it took no measured time).
        const early = fakes.meta.accepted.size - (want - events.length);
        while (fakes.meta.accepted.size < want) await new Promise((resolve) => setTimeout(resolve, 5));
        total.relay.ms += performance.now() - started;
        total.relay.events += events.length - early;
        relayRequests += relayRequestsBefore() - before;
        const cpuAfter = workerdCpuMs();
        workerdCpu =
          workerdCpu === undefined || cpuBefore === undefined || cpuAfter === undefined
            ? undefined
            : workerdCpu + cpuAfter - cpuBefore;
      } else {
        // Pre-built outside the measured window: what the platform receives, ready to post.
        const bodies = await Promise.all(
          callChunks(events).map(async (chunk) =>
            JSON.stringify({ data: (await buildMetaEvents(chunk, new Date())).items, access_token: token }),
          ),
        );
        const url = `${fakes.vars.META_API_BASE}/${datasetId}/events`;
        const started = performance.now();
        let next = 0;
        await Promise.all(
          Array.from({ length: inFlight }, async () => {
            while (next < bodies.length) {
              const body = bodies[next++];
              const post = () =>
                fetch(url, { method: "POST", headers: { "Content-Type": "application/json" }, body });
              // A kept-alive socket the fake server closed while idle (between rounds on a loaded
              // machine) resets the first call on it: that one is sent again (Meta dedupes by event_id).
              const res = await post().catch((error: { cause?: { code?: string } }) => {
                if (error?.cause?.code === "ECONNRESET") return post();
                throw error;
              });
              if (res.status !== 200) throw new Error(`fake Meta answered ${res.status}`);
              await res.arrayBuffer();
            }
          }),
        );
        total.direct.ms += performance.now() - started;
        total.direct.events += events.length;
        if (fakes.meta.accepted.size < want)
          throw new Error("direct side: fake Meta did not accept every event");
      }
    }
  }
  const rate = (s: { events: number; ms: number }) => (s.events / s.ms) * 1000;
  return {
    relay: { events: total.relay.events, elapsedMs: total.relay.ms, eventsPerSecond: rate(total.relay) },
    direct: { events: total.direct.events, elapsedMs: total.direct.ms, eventsPerSecond: rate(total.direct) },
    ratio: rate(total.relay) / rate(total.direct),
    relayRequests,
    inFlight,
    ...(workerdCpu !== undefined && {
      workerdCpuMsPer1000: (workerdCpu / total.relay.events) * 1000,
      enqueueCpuMsPer1000: (enqueueCpu / total.relay.events) * 1000,
    }),
  };
}

export function relayLines(f: RelayFigures, options: RelayBenchOptions): string {
  const int = (n: number) => Math.round(n).toLocaleString("en-US");
  const pass = f.ratio >= RELAY_TARGET ? "PASS" : "MISS";
  return [
    `(f) relay   to a local fake Meta, ≤ ${f.inFlight} calls in flight: ${options.eventsPerBatch}-event queue messages ` +
      `(merged into ≤ ${RELAY_MAX_EVENTS_PER_BATCH}-event calls) vs pre-built ${RELAY_MAX_EVENTS_PER_BATCH}-event calls: ` +
      `relay queue → Worker ${int(f.relay.eventsPerSecond)} ev/s | pre-built direct ${int(f.direct.eventsPerSecond)} ev/s | ` +
      `ratio ${f.ratio.toFixed(2)} (target ≥ ${RELAY_TARGET}) ${pass}`,
    `    ${int(f.relay.events)} events per side over ${options.rounds} alternating rounds; ` +
      `${f.relayRequests} platform calls on the relay side for ${Math.ceil(f.relay.events / options.eventsPerBatch)} queue messages` +
      (f.workerdCpuMsPer1000 === undefined
        ? ""
        : `; workerd CPU ${f.workerdCpuMsPer1000.toFixed(1)} ms per 1,000 events (relay Worker and local queue; ` +
          `${(f.enqueueCpuMsPer1000 ?? 0).toFixed(1)} ms of it enqueueing)`),
  ].join("\n");
}
