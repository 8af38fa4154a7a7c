import path from "node:path";
import { sql } from "kysely";
import { Log, LogLevel, Miniflare, type WorkerOptions } from "miniflare";
import { unstable_getMiniflareWorkerOptions } from "wrangler";
import { bundleWorker, ROOT } from "../../scripts/local/bundle";
import { roleUrl } from "../../scripts/local/migrate";
import { createNodeDb } from "../../scripts/local/node-db";
import { startWsBridge } from "../../scripts/local/ws-bridge";
import { createTenant } from "../support/tenant";
import { BROWSER_USER_AGENT, ingestBody } from "./events";
import { runLoad } from "./http";
import { type Resources, withoutForeignSignalHandlers } from "./resources";

export interface EndToEndOptions {
  ownerUrl: string;
  batchSize: number;
  concurrency: number;
  seconds: number;
  /** Distinct request bodies (fresh event ids); the load stops reusing none if it sends fewer. */
  bodies: number;
}

export interface EndToEndFigures {
  requests: number;
  /** Distinct events sent (a body sent twice is stored once). */
  events: number;
  stored: number;
  loadMs: number;
  /** From the first request to the last row stored. */
  elapsedMs: number;
  eventsPerSecond: number;
  /** The consumer's invocations on the events queue, as Miniflare's queue reports each one. */
  consumer: ConsumerInvocations;
}

export interface ConsumerInvocations {
  invocations: number;
  messages: number;
  /** Sum of the invocations' durations (from dispatch to the consumer's answer). */
  busyMs: number;
  /** How much of the elapsed time some invocation was running (overlapping invocations counted once). */
  coveredMs: number;
  /** Invocations that started before the load ended (the local queue may hold its batches meanwhile). */
  duringLoad: number;
}

/**
 * Miniflare's queue broker logs one line per consumer invocation: `QUEUE <queue> <acked>/<total> (<ms>ms)`,
 * written when the invocation answers. This keeps those of one queue, to say how long the consumer took
 * per batch and whether it was running all the time (then the consumer, not the edge, sets the pace).
 */
class QueueInvocationLog extends Log {
  readonly spans: { endMs: number; ms: number; messages: number }[] = [];

  constructor(private readonly queue: string) {
    super(LogLevel.INFO);
  }

  protected override log(message: string): void {
    // biome-ignore lint/suspicious/noControlCharactersInRegex: strips the ANSI colours of the log line
    const plain = message.replace(/\u001b\[[0-9;]*m/g, "");
    const match = new RegExp(`QUEUE ${this.queue} \\d+/(\\d+) \\((\\d+)ms\\)`).exec(plain);
    if (match)
      this.spans.push({ endMs: performance.now(), ms: Number(match[2]), messages: Number(match[1]) });
  }

  figures(loadEndMs: number): ConsumerInvocations {
    const spans = this.spans.filter((s) => s.messages > 0);
    const intervals = spans.map((s) => [s.endMs - s.ms, s.endMs] as const).sort((a, b) => a[0] - b[0]);
    let coveredMs = 0;
    let reach = Number.NEGATIVE_INFINITY;
    for (const [start, end] of intervals) {
      if (end > reach) coveredMs += end - Math.max(start, reach);
      reach = Math.max(reach, end);
    }
    return {
      invocations: spans.length,
      messages: spans.reduce((n, s) => n + s.messages, 0),
      busyMs: spans.reduce((n, s) => n + s.ms, 0),
      coveredMs,
      duringLoad: spans.filter((s) => s.endMs - s.ms < loadEndMs).length,
    };
  }
}

export const END_TO_END_TARGET = 20_000;

/**
 * (h) Sustained ingest to Postgres: the real ingest Worker and the real consumer Worker (bundled as
 * deployed, configured from their wrangler.toml) in one workerd, the local queue between them, the
 * consumer writing to Postgres through the WebSocket bridge. Closed-loop load for `seconds`, then the
 * clock runs until the last row is stored: events per second is rows stored over that whole time.
 */
export async function benchEndToEnd(
  resources: Resources,
  options: EndToEndOptions,
): Promise<EndToEndFigures> {
  const ownerDb = createNodeDb(options.ownerUrl, 2);
  const closeOwnerDb = resources.add("owner db (e2e)", () => ownerDb.destroy());
  const tenant = await createTenant(ownerDb);
  const target = new URL(options.ownerUrl);
  const bridge = await startWsBridge({ host: target.hostname, port: Number(target.port || 5432) });
  const closeBridge = resources.add("ws bridge (e2e)", () => bridge.close());
  const ingest = unstable_getMiniflareWorkerOptions(path.join(ROOT, "wrangler.toml"))
    .workerOptions as WorkerOptions;
  const consumer = unstable_getMiniflareWorkerOptions(path.join(ROOT, "workers/consumer/wrangler.toml"))
    .workerOptions as WorkerOptions;
  const wsProxy = `127.0.0.1:${bridge.port}/v1`;
  const ingestScript = await bundleWorker("workers/ingest/index.ts", "bench-e2e-ingest");
  const consumerScript = await bundleWorker("workers/consumer/index.ts", "bench-e2e-consumer");
  const queueLog = new QueueInvocationLog("layers-events");
  const mf = withoutForeignSignalHandlers(
    () =>
      new Miniflare({
        cf: { country: "DE", region: "Bavaria" },
        // Both Workers log per request and per message; the bench's stdout is the report.
        handleStructuredLogs: () => {},
        log: queueLog,
        structuredWorkerdLogs: true,
        workers: [
          {
            ...ingest,
            name: "ingest",
            modules: true,
            scriptPath: ingestScript,
            routes: ["ingest.bench/*"],
            bindings: {
              ...ingest.bindings,
              DATABASE_URL: roleUrl(options.ownerUrl, "layers_ingest"),
              NEON_WS_PROXY: wsProxy,
            },
            ratelimits: { INGEST_RATE_LIMITER: { simple: { limit: 1_000_000_000, period: 60 } } },
          },
          {
            ...consumer,
            name: "consumer",
            modules: true,
            scriptPath: consumerScript,
            bindings: {
              ...consumer.bindings,
              DATABASE_URL: roleUrl(options.ownerUrl, "layers_consumer"),
              NEON_WS_PROXY: wsProxy,
            },
          },
        ],
      }),
  );
  const dispose = resources.add("miniflare (e2e)", () => mf.dispose());
  try {
    const url = await mf.ready;
    const nowMs = Date.now();
    const bodies = Array.from({ length: options.bodies }, (_, b) =>
      ingestBody("e2e", b, options.batchSize, nowMs),
    );
    const started = performance.now();
    const load = await runLoad(
      {
        url,
        host: "ingest.bench",
        path: "/l/events",
        headers: {
          authorization: `Bearer ${tenant.sdkKey}`,
          "content-type": "application/json",
          "user-agent": BROWSER_USER_AGENT,
        },
        bodies,
      },
      { concurrency: options.concurrency, durationMs: options.seconds * 1_000, expectStatus: 202 },
    );
    const loadMs = performance.now() - started;
    if (load.unexpected.count > 0) {
      throw new Error(
        `e2e: ${load.unexpected.count} responses were not 202 (first: ${load.unexpected.firstStatus} ${load.unexpected.firstBody})`,
      );
    }
    const events = Math.min(load.requests, bodies.length) * options.batchSize;
    const count = async () => {
      const { rows } = await sql<{ n: number }>`
        select count(*)::int as n from sdk_events where project_id = ${tenant.projectId}`.execute(ownerDb);
      return rows[0]?.n ?? 0;
    };
    // While waiting, the project's daily counters, not count(*): the consumer adds each new event to them
    // in the statement that stores it, so their sum is the rows stored (the project is fresh), read from a
    // few rows. count(*) over 100k+ rows every 50 ms took ~40 ms each, ~40% of a core the consumer needs.
    const counted = async () => {
      const { rows } = await sql<{ n: number }>`
        select coalesce(sum(count), 0)::int as n from event_daily_counts
        where project_id = ${tenant.projectId}`.execute(ownerDb);
      return rows[0]?.n ?? 0;
    };
    // Until every distinct event is stored, or nothing more arrives for 10 s (then the figure says so).
    let stored = await counted();
    let lastChange = performance.now();
    let doneAt = performance.now();
    while (stored < events && performance.now() - lastChange < 10_000) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      const now = await counted();
      if (now !== stored) {
        stored = now;
        lastChange = performance.now();
      }
      doneAt = performance.now();
    }
    if (stored >= events) doneAt = lastChange;
    const elapsedMs = doneAt - started;
    // The figure reports the rows themselves.
    stored = await count();
    return {
      requests: load.requests,
      events,
      stored,
      loadMs,
      elapsedMs,
      eventsPerSecond: (stored / elapsedMs) * 1_000,
      consumer: queueLog.figures(started + loadMs),
    };
  } finally {
    await dispose();
    await closeBridge();
    await closeOwnerDb();
  }
}

export function endToEndLines(f: EndToEndFigures, options: EndToEndOptions): string {
  const int = (n: number) => Math.round(n).toLocaleString("en-US");
  const c = f.consumer;
  const pass = f.eventsPerSecond >= END_TO_END_TARGET && f.stored === f.events ? "PASS" : "MISS";
  return [
    `(h) e2e     ingest Worker → queue → consumer Worker → Postgres, ${options.concurrency} clients for ${options.seconds} s: ` +
      `${int(f.eventsPerSecond)} events/s stored (target ≥ ${int(END_TO_END_TARGET)}) ${pass}`,
    `    ${int(f.requests)} requests of ${options.batchSize} events answered 202 in ${(f.loadMs / 1_000).toFixed(1)} s; ` +
      `${int(f.stored)} of ${int(f.events)} distinct events stored ${(f.elapsedMs / 1_000).toFixed(1)} s after the first request` +
      (f.requests > options.bodies
        ? ` (bodies reused: ${int(f.requests - options.bodies)} requests repeated events)`
        : ""),
    `    consumer: ${int(c.invocations)} invocations (${int(c.duringLoad)} begun during the load) of ${int(c.messages / Math.max(c.invocations, 1))} messages on average, ` +
      `${int(c.busyMs / Math.max(c.invocations, 1))} ms each; ${int((c.messages * options.batchSize * 1_000) / Math.max(c.coveredMs, 1))} events/s ` +
      `while one ran (${int((c.coveredMs / f.elapsedMs) * 100)}% of the time); the edge answered ` +
      `${int((f.requests * options.batchSize * 1_000) / f.loadMs)} events/s`,
  ].join("\n");
}
