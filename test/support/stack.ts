import path from "node:path";
import { Miniflare, type WorkerOptions } from "miniflare";
import { inject } from "vitest";
import { unstable_getMiniflareWorkerOptions } from "wrangler";
import {
  type DeadLetter,
  type DeadLetterKind,
  deadLetterKeys,
  readDeadLetter,
} from "../../functions/deadLetters/store";
import { roleUrl } from "../../scripts/local/migrate";
import { createNodeDb } from "../../scripts/local/node-db";
import { startWsBridge, type WsBridge } from "../../scripts/local/ws-bridge";
import type { Db, DbRole } from "../../shared/db";
import { ROOT } from "../../scripts/local/bundle";
import { type FaultyProxy, startFaultyProxy } from "./faultyProxy";
import { type LocalS3, startLocalS3 } from "./s3";

export interface StackOptions {
  /** "real": the consumer Worker persists to Postgres. "recorder": a stand-in keeps what was enqueued. */
  consumer?: "real" | "recorder";
  ingestVars?: Record<string, string>;
  consumerVars?: Record<string, string>;
  apiVars?: Record<string, string>;
  cronVars?: Record<string, string>;
  /** The relay Worker's vars: platform URLs (tests point them at test/support/fakePlatforms.ts), timings. */
  relayVars?: Record<string, string>;
  ingestRateLimit?: number;
  /** The consumer's max_retries (wrangler.toml's 20 unless a test wants a message to die sooner). */
  consumerMaxRetries?: number;
  /** The dead-letter Worker's vars (RELAY_RECORD_ATTEMPTS…). */
  deadLetterVars?: Record<string, string>;
  /** A local S3 server to use (a test that stops it to play an outage); else the stack starts its own. */
  s3?: LocalS3;
  /** Puts a proxy the test can blackhole or cut (test/support/faultyProxy.ts) between bridge and Postgres. */
  faultyDatabase?: boolean;
}

export interface Stack {
  mf: Miniflare;
  /** Owner connection (bypasses RLS) for assertions and setup. */
  db: Db;
  bridge: WsBridge;
  /** Set with `faultyDatabase`: the Workers' only way to Postgres. */
  proxy: FaultyProxy | undefined;
  logs: string[];
  ingest(body: unknown, init?: IngestInit): Promise<Response>;
  /** A request to the partner API Worker. */
  api(path: string, init?: RequestInit): Promise<Response>;
  /** Runs the Cron Worker's scheduled handler once, with `now` as the trigger's scheduled time. */
  cron(now?: Date): Promise<{ outcome: string }>;
  /** The S3-API server every Worker's buckets live on (audit archive, dead letters). */
  s3: LocalS3;
  /** Recorder mode: the queue messages delivered so far (and forget them). */
  takeRecorded(): Promise<unknown[]>;
  /** The dead letters kept in storage so far, oldest first (read, not removed). */
  deadLetters(kind?: DeadLetterKind): Promise<DeadLetter[]>;
  restartBridge(): Promise<void>;
  stopBridge(): Promise<void>;
  dispose(): Promise<void>;
}

export interface IngestInit {
  key?: string | null;
  headers?: Record<string, string>;
  cf?: Record<string, unknown>;
  rawBody?: string;
  method?: string;
}

const RECORDER = `
let recorded = [];
export default {
  async queue(batch) { for (const m of batch.messages) { recorded.push(m.body); m.ack(); } },
  async fetch() { const out = recorded; recorded = []; return Response.json(out); },
};`;

/** A fixed test keyring for destination tokens (tests only); override through apiVars. */
export const TEST_DESTINATION_KEYRING = {
  DESTINATION_KEYS: JSON.stringify({ "test-k1": "dGVzdC1vbmx5LWRlc3RpbmF0aW9uLWtleS0wMDAwMDA=" }),
  DESTINATION_KEY_ID: "test-k1",
};

function fromConfig(configPath: string): WorkerOptions {
  return unstable_getMiniflareWorkerOptions(path.join(ROOT, configPath)).workerOptions as WorkerOptions;
}

/**
 * The real Workers in workerd (Miniflare), wired as wrangler.toml wires them (same queues, same rate-limit
 * binding), talking to the test Postgres through the same WebSocket bridge `npm run dev` uses.
 */
export async function startStack(options: StackOptions = {}): Promise<Stack> {
  const ownerUrl = inject("ownerUrl");
  const target = new URL(ownerUrl);
  const postgres = { host: target.hostname, port: Number(target.port || 5432) };
  const proxy = options.faultyDatabase ? await startFaultyProxy(postgres) : undefined;
  const pgTarget = proxy ? { host: "127.0.0.1", port: proxy.port } : postgres;
  let bridge = await startWsBridge(pgTarget);
  const ownS3 = options.s3 ? undefined : await startLocalS3();
  const s3 = (options.s3 ?? ownS3) as LocalS3;
  const bridgePort = bridge.port;
  // Each Worker logs in as its own role, as in production.
  const dbBindings = (role: DbRole) => ({
    DATABASE_URL: roleUrl(ownerUrl, role),
    NEON_WS_PROXY: `127.0.0.1:${bridgePort}/v1`,
  });
  const logs: string[] = [];

  const ingest = fromConfig("wrangler.toml");
  const consumer = fromConfig("workers/consumer/wrangler.toml");
  const api = fromConfig("workers/api/wrangler.toml");
  const workers: WorkerOptions[] = [
    {
      ...ingest,
      name: "ingest",
      modules: true,
      scriptPath: inject("ingestScript"),
      bindings: {
        ...ingest.bindings,
        ...dbBindings("layers_ingest"),
        SDK_KEY_CACHE_TTL_SECONDS: "0",
        ...options.ingestVars,
      },
      ...(options.ingestRateLimit
        ? { ratelimits: { INGEST_RATE_LIMITER: { simple: { limit: options.ingestRateLimit, period: 60 } } } }
        : {}),
    },
  ];
  // Deliver fast in tests; the production batch settings stay in wrangler.toml.
  const fastDelivery = { maxBatchSize: 100, maxBatchTimeout: 0.1 };
  if (options.consumer === "recorder") {
    workers.push({
      name: "recorder",
      modules: true,
      script: RECORDER,
      compatibilityDate: "2026-04-20",
      queueConsumers: { "layers-events": fastDelivery },
    });
  } else {
    const configured = (consumer.queueConsumers ?? {}) as Record<string, object>;
    workers.push({
      ...consumer,
      name: "consumer",
      modules: true,
      scriptPath: inject("consumerScript"),
      bindings: {
        ...consumer.bindings,
        ...dbBindings("layers_consumer"),
        RETRY_BASE_DELAY_SECONDS: "1",
        ...options.consumerVars,
      },
      queueConsumers: {
        "layers-events": {
          ...configured["layers-events"],
          ...fastDelivery,
          ...(options.consumerMaxRetries === undefined ? {} : { maxRetries: options.consumerMaxRetries }),
        },
      },
    });
  }

  workers.push({
    ...api,
    name: "api",
    modules: true,
    scriptPath: inject("apiScript"),
    bindings: {
      ...api.bindings,
      ...dbBindings("layers_api"),
      ALLOW_TEST_CLOCK: "true",
      ...TEST_DESTINATION_KEYRING,
      // Test-send's platforms: nowhere unless a test points them at its fakes.
      META_API_BASE: "http://127.0.0.1:9",
      TIKTOK_API_BASE: "http://127.0.0.1:9",
      APPLE_ADSERVICES_URL: "http://127.0.0.1:9",
      ...options.apiVars,
    },
  });
  // The relay Worker, on the relay queue and its dead-letter queue. Unless a test says otherwise, the
  // platforms are an address where nothing listens, so no test ever reaches the real ones.
  const relay = fromConfig("workers/relay/wrangler.toml");
  const relayQueues = (relay.queueConsumers ?? {}) as Record<string, object>;
  const nowhere = "http://127.0.0.1:9";
  workers.push({
    ...relay,
    name: "relay",
    modules: true,
    scriptPath: inject("relayScript"),
    bindings: {
      ...relay.bindings,
      ...dbBindings("layers_relay"),
      ...TEST_DESTINATION_KEYRING,
      META_API_BASE: nowhere,
      TIKTOK_API_BASE: nowhere,
      APPLE_ADSERVICES_URL: nowhere,
      RETRY_BASE_DELAY_SECONDS: "0",
      RELAY_TIMEOUT_MS: "2000",
      APPLE_NOT_FOUND_RETRY_MS: "50",
      ...options.relayVars,
    },
    queueConsumers: { "layers-relay": { ...relayQueues["layers-relay"], ...fastDelivery } },
  });
  // The dead-letter Worker, on both dead-letter queues, keeping what it takes in the stack's S3.
  const deadLetters = fromConfig("workers/dead-letters/wrangler.toml");
  const deadLetterQueues = (deadLetters.queueConsumers ?? {}) as Record<string, object>;
  workers.push({
    ...deadLetters,
    name: "dead-letters",
    modules: true,
    scriptPath: inject("deadLettersScript"),
    bindings: {
      ...deadLetters.bindings,
      ...dbBindings("layers_relay"),
      ...s3.vars,
      ...options.deadLetterVars,
    },
    queueConsumers: Object.fromEntries(
      Object.entries(deadLetterQueues).map(([queue, settings]) => [queue, { ...settings, ...fastDelivery }]),
    ),
  });
  const cron = fromConfig("workers/cron/wrangler.toml");
  workers.push({
    ...cron,
    name: "cron",
    modules: true,
    scriptPath: inject("cronScript"),
    bindings: {
      // The audit archive is on only where a test asks for it (its cronVars name ARCHIVE_BUCKET): a Cron run
      // with a clock years ahead would otherwise archive every other test's audit rows.
      ...Object.fromEntries(
        Object.entries(cron.bindings ?? {}).filter(([name]) => name !== "ARCHIVE_BUCKET"),
      ),
      ...dbBindings("layers_maintenance"),
      ...s3.vars,
      ...options.cronVars,
    },
  });

  const mf = new Miniflare({
    workers,
    structuredWorkerdLogs: true,
    handleStructuredLogs: ({ message }: { message: string }) => {
      logs.push(message);
    },
  });
  await mf.ready;
  const db = createNodeDb(ownerUrl);
  const take = async (worker: string) => {
    const response = await (await mf.getWorker(worker)).fetch("http://recorder/");
    return (await response.json()) as unknown[];
  };

  return {
    mf,
    db,
    get bridge() {
      return bridge;
    },
    proxy,
    logs,
    async ingest(body, init = {}) {
      const headers: Record<string, string> = { "Content-Type": "application/json", ...init.headers };
      if (init.key !== null && init.key !== undefined) headers.Authorization = `Bearer ${init.key}`;
      const response = await mf.dispatchFetch("http://ingest.test/l/events", {
        method: init.method ?? "POST",
        headers,
        body: init.method === "GET" ? undefined : (init.rawBody ?? JSON.stringify(body)),
        cf: init.cf ?? { country: "DE", region: "Bavaria" },
      });
      return response as unknown as Response;
    },
    async api(path, init) {
      const response = await (await mf.getWorker("api")).fetch(`http://api.test${path}`, init as never);
      return response as unknown as Response;
    },
    async cron(now = new Date()) {
      const worker = await mf.getWorker("cron");
      const result = await worker.scheduled({ scheduledTime: now, cron: "*/5 * * * *" });
      return { outcome: result.outcome };
    },
    s3,
    takeRecorded: () => take("recorder"),
    async deadLetters(kind) {
      const out: DeadLetter[] = [];
      for (const k of kind ? [kind] : (["events", "relay"] as const)) {
        for await (const key of deadLetterKeys(s3.deadLetters, k)) {
          const letter = await readDeadLetter(s3.deadLetters, key);
          if (letter) out.push(letter);
        }
      }
      return out;
    },
    async stopBridge() {
      await bridge.close();
    },
    async restartBridge() {
      bridge = await startWsBridge(pgTarget, bridgePort);
    },
    async dispose() {
      await mf.dispose();
      await bridge.close();
      await proxy?.close();
      await ownS3?.dispose();
      await db.destroy();
    },
  };
}

/** Polls until `check` returns a value (not undefined) or the time runs out. */
export async function waitFor<T>(
  check: () => Promise<T | undefined>,
  timeoutMs = 15_000,
  intervalMs = 50,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`waitFor: condition not met within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}
