import { Miniflare, type WorkerOptions } from "miniflare";
import { inject } from "vitest";
import {
  type DeadLetter,
  type DeadLetterKind,
  deadLetterKeys,
  readDeadLetter,
} from "../../functions/deadLetters/store";
import { roleUrl } from "../../scripts/local/migrate";
import { type NeonHttp, startNeonHttp } from "../../scripts/local/neon-http";
import { createNodeDb } from "../../scripts/local/node-db";
import { type WorkerName, workerOptions } from "../../scripts/local/workers";
import { startWsBridge, type WsBridge } from "../../scripts/local/ws-bridge";
import type { Db } from "../../shared/db";
import { testDatabaseUrl } from "./database";
import { type FaultyProxy, startFaultyProxy } from "./faultyProxy";
import { rememberSecretsIn } from "./issuedSecrets";
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
  /** The API's cross-isolate rate-limit binding (per key, 60 s); wrangler.toml's limit unless set. */
  apiRateLimit?: number;
  /** The consumer's max_retries (wrangler.toml's 20 unless a test wants a message to die sooner). */
  consumerMaxRetries?: number;
  /** The webhooks Worker's vars (WEBHOOK_RETRY_SCHEDULE_SECONDS, WEBHOOK_TIMEOUT_MS…). */
  webhooksVars?: Record<string, string>;
  /** The agent Worker's vars (CONTENT_PROVIDER, a provider's base URL and key: test/support/fakeProviders.ts). */
  agentVars?: Record<string, string>;
  /** The content Worker's vars (CONTENT_STEP_RETRIES, CONTENT_RETRY_DELAY_MS, CONTENT_TEST_CRASH_AFTER…). */
  contentVars?: Record<string, string>;
  /** The dead-letter Worker's vars (RELAY_RECORD_ATTEMPTS…). */
  deadLetterVars?: Record<string, string>;
  /** A local S3 server to use (a test that stops it to play an outage); else the stack starts its own. */
  s3?: LocalS3;
  /**
   * Turns the Cron Worker's org exporter on (EXPORT_DATABASE_URL as layers_exporter). Off by default: every
   * stack's Cron would otherwise advance any test's export with its own S3 server.
   */
  exporter?: boolean;
  /** Puts a proxy the test can blackhole or cut (test/support/faultyProxy.ts) between bridge and Postgres. */
  faultyDatabase?: boolean;
}

export interface Stack {
  mf: Miniflare;
  /** Owner connection (bypasses RLS) for assertions and setup. */
  db: Db;
  bridge: WsBridge;
  /** The SQL-over-HTTP stand-in the API's reads and key lookups go through. */
  neonHttp: NeonHttp;
  /** Set with `faultyDatabase`: the Workers' only way to Postgres. */
  proxy: FaultyProxy | undefined;
  logs: string[];
  ingest(body: unknown, init?: IngestInit): Promise<Response>;
  /** A request to the partner API Worker. */
  api(path: string, init?: RequestInit): Promise<Response>;
  /**
   * Runs the Cron Worker's scheduled handler once, with `now` as the trigger's scheduled time, as the
   * five-minute trigger (every job) unless `cron` names the every-minute one (the webhook sweep only).
   */
  cron(now?: Date, cron?: string): Promise<{ outcome: string }>;
  /** The S3-API server every Worker's buckets live on (audit archive, dead letters). */
  s3: LocalS3;
  /** Recorder mode: the queue messages delivered so far (and forget them). */
  takeRecorded(): Promise<unknown[]>;
  /** The dead letters kept in storage so far, oldest first (read, not removed). */
  deadLetters(kind?: DeadLetterKind): Promise<DeadLetter[]>;
  /** Restarts the Workers' ways to Postgres: the WebSocket bridge and the SQL-over-HTTP stand-in. */
  restartBridge(): Promise<void>;
  /** Stops both: to the Workers, the database is unreachable. */
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

/** The bundle of each Worker (test/support/global-setup.ts builds them once per run). */
const SCRIPTS = {
  ingest: "ingestScript",
  consumer: "consumerScript",
  relay: "relayScript",
  api: "apiScript",
  cron: "cronScript",
  "dead-letters": "deadLettersScript",
  webhooks: "webhooksScript",
  agent: "agentScript",
  content: "contentScript",
} as const satisfies Record<WorkerName, string>;

/**
 * The real Workers in workerd (Miniflare), wired as wrangler.toml wires them (same queues, same rate-limit
 * binding), talking to the test Postgres through the same WebSocket bridge `npm run dev` uses.
 */
export async function startStack(options: StackOptions = {}): Promise<Stack> {
  const ownerUrl = testDatabaseUrl();
  const target = new URL(ownerUrl);
  const postgres = { host: target.hostname, port: Number(target.port || 5432) };
  const proxy = options.faultyDatabase ? await startFaultyProxy(postgres) : undefined;
  const pgTarget = proxy ? { host: "127.0.0.1", port: proxy.port } : postgres;
  let bridge = await startWsBridge(pgTarget);
  // The API's reads go over SQL-over-HTTP (Neon's endpoint in production, this stand-in here).
  let neonHttp: NeonHttp = await startNeonHttp(pgTarget);
  const neonHttpPort = neonHttp.port;
  const ownS3 = options.s3 ? undefined : await startLocalS3();
  const s3 = (options.s3 ?? ownS3) as LocalS3;
  const bridgePort = bridge.port;
  const logs: string[] = [];
  // Each Worker as its wrangler config declares it, logged in as its own role (scripts/local/workers.ts).
  const database = {
    ownerUrl,
    wsProxy: `127.0.0.1:${bridgePort}/v1`,
    httpProxy: `127.0.0.1:${neonHttpPort}`,
  };
  const worker = (name: WorkerName, bindings: Record<string, string>) =>
    workerOptions(name, inject(SCRIPTS[name]), database, bindings);
  // Deliver fast in tests; the production batch settings stay in wrangler.toml.
  const fastDelivery = { maxBatchSize: 100, maxBatchTimeout: 0.1 };
  const fast = (options: WorkerOptions, overrides: Record<string, object> = {}): WorkerOptions => ({
    ...options,
    queueConsumers: Object.fromEntries(
      Object.entries((options.queueConsumers ?? {}) as Record<string, object>).map(([queue, settings]) => [
        queue,
        { ...settings, ...fastDelivery, ...overrides[queue] },
      ]),
    ),
  });
  // The platforms are an address where nothing listens unless a test says otherwise, so no test ever
  // reaches the real ones.
  const nowhere = "http://127.0.0.1:9";
  const platforms = { META_API_BASE: nowhere, TIKTOK_API_BASE: nowhere, APPLE_ADSERVICES_URL: nowhere };

  // Key caches off unless a test turns one on: most tests revoke a key and expect the next call refused.
  const ingest = worker("ingest", { SDK_KEY_CACHE_TTL_SECONDS: "0", ...options.ingestVars });
  if (options.ingestRateLimit) {
    ingest.ratelimits = { INGEST_RATE_LIMITER: { simple: { limit: options.ingestRateLimit, period: 60 } } };
  }
  const workers: WorkerOptions[] = [ingest];
  if (options.consumer === "recorder") {
    workers.push({
      name: "recorder",
      modules: true,
      script: RECORDER,
      compatibilityDate: "2026-04-20",
      queueConsumers: { "layers-events": fastDelivery },
    });
  } else {
    const retries =
      options.consumerMaxRetries === undefined ? {} : { maxRetries: options.consumerMaxRetries };
    workers.push(
      fast(worker("consumer", { RETRY_BASE_DELAY_SECONDS: "1", ...options.consumerVars }), {
        "layers-events": retries,
      }),
    );
  }
  const api = worker("api", {
    ALLOW_TEST_CLOCK: "true",
    API_KEY_CACHE_TTL_SECONDS: "0",
    // Storage configs may name the tests' local S3 servers over plain http; checks give up quickly.
    STORAGE_ALLOW_LOCAL_HTTP: "true",
    STORAGE_CHECK_TIMEOUT_MS: "3000",
    // Generated media (content containers: signed download URLs, deletes) and org export archives live on
    // the tests' S3 server.
    ...s3.vars,
    ...TEST_DESTINATION_KEYRING,
    ...platforms,
    ...options.apiVars,
  });
  if (options.apiRateLimit) {
    api.ratelimits = { API_RATE_LIMITER: { simple: { limit: options.apiRateLimit, period: 60 } } };
  }
  workers.push(
    api,
    fast(
      worker("relay", {
        ...TEST_DESTINATION_KEYRING,
        ...platforms,
        RETRY_BASE_DELAY_SECONDS: "0",
        RELAY_TIMEOUT_MS: "2000",
        APPLE_NOT_FOUND_RETRY_MS: "50",
        ...options.relayVars,
      }),
    ),
    fast(worker("dead-letters", { ...s3.vars, ...options.deadLetterVars })),
    fast(
      worker("webhooks", {
        ...TEST_DESTINATION_KEYRING,
        WEBHOOK_ALLOW_LOCAL_HTTP: "true",
        WEBHOOK_TIMEOUT_MS: "2000",
        ...options.webhooksVars,
      }),
    ),
  );
  const cron = worker("cron", {
    ...s3.vars,
    ...(options.exporter ? { EXPORT_DATABASE_URL: roleUrl(ownerUrl, "layers_exporter") } : {}),
    ...options.cronVars,
  });
  // The audit archive is on only where a test asks for it (its cronVars name ARCHIVE_BUCKET): a Cron run
  // with a clock years ahead would otherwise archive every other test's audit rows.
  if (!options.cronVars?.ARCHIVE_BUCKET) delete (cron.bindings as Record<string, unknown>).ARCHIVE_BUCKET;
  workers.push(cron);
  // The agent: no database, no queue, no bucket (workers/agent/wrangler.toml); the local provider unless a
  // test points it at the fake providers.
  workers.push(worker("agent", { ...options.agentVars }));
  // The content Worker: the Workflow that runs content jobs (the API binds it by script name) and the
  // in-memory path of storage:false jobs. Retries come fast in tests; the schedule stays in wrangler.toml.
  workers.push(
    worker("content", {
      ...s3.vars,
      ...TEST_DESTINATION_KEYRING,
      STORAGE_ALLOW_LOCAL_HTTP: "true",
      CONTENT_RETRY_DELAY_MS: "50",
      CONTENT_PARTNER_TIMEOUT_MS: "3000",
      ...options.contentVars,
    }),
  );

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
    get neonHttp() {
      return neonHttp;
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
      if (typeof init?.body === "string") rememberSecretsIn(parseJson(init.body));
      const response = (await (
        await mf.getWorker("api")
      ).fetch(`http://api.test${path}`, init as never)) as unknown as Response;
      // Every secret an answer hands out is remembered for the end-of-run scan (issuedSecrets.ts).
      if (response.headers.get("Content-Type")?.includes("application/json")) {
        rememberSecretsIn(parseJson(await response.clone().text()));
      }
      return response;
    },
    async cron(now = new Date(), cron = "*/5 * * * *") {
      const worker = await mf.getWorker("cron");
      const result = await worker.scheduled({ scheduledTime: now, cron });
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
      await neonHttp.close();
    },
    async restartBridge() {
      bridge = await startWsBridge(pgTarget, bridgePort);
      neonHttp = await startNeonHttp(pgTarget, neonHttpPort);
    },
    async dispose() {
      await mf.dispose();
      await bridge.close();
      await neonHttp.close();
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

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
