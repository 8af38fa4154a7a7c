import path from "node:path";
import { Miniflare, type WorkerOptions } from "miniflare";
import { unstable_getMiniflareWorkerOptions } from "wrangler";
import { bundleWorker, ROOT } from "../../scripts/local/bundle";
import { roleUrl } from "../../scripts/local/migrate";
import { startWsBridge } from "../../scripts/local/ws-bridge";
import { BROWSER_USER_AGENT, ingestBody } from "./events";
import { type LoadResult, type LoadTarget, runLoad } from "./http";
import { workerdCpuMs } from "./proc";
import { type Resources, withoutForeignSignalHandlers } from "./resources";

export interface IngestOptions {
  ownerUrl: string;
  sdkKey: string;
  batchSize: number;
  concurrency: number;
  /** Measured seconds per Worker, split over `rounds` alternating runs. */
  seconds: number;
  rounds: number;
}

export interface Throughput {
  requests: number;
  elapsedMs: number;
  requestsPerSecond: number;
  /** CPU of the workerd process per request (Linux); less noisy than requests per second. */
  workerdCpuMsPerRequest: number | undefined;
}

export interface IngestFigures {
  layers: Throughput;
  bare: Throughput;
  /** Informational: parse + enqueue only, to tell our code's cost from the local queue's. */
  passthrough: Throughput;
  ratio: number;
  /** Events the discarding consumer received: proof that the 202s were really queued. */
  delivered: { events: number; expected: number };
}

type Side = "bare" | "layers" | "passthrough";
const SIDES: readonly Side[] = ["bare", "layers", "passthrough"];

/**
 * The baseline: a Worker that answers 202 and does nothing else. It does read the body: a Worker that
 * answers before the upload ends makes workerd reset the keep-alive connection (ECONNRESET mid-write).
 */
const BARE = `export default {
  async fetch(request) {
    await request.arrayBuffer();
    return new Response('{"accepted":50,"rejected":[]}', { status: 202 });
  },
};`;

/**
 * Not a target, a yardstick: the least any ingest must do (parse the body, put its events on the same
 * local queue). Whatever it costs over bare is Miniflare's queue, not our code.
 */
const PASSTHROUGH = `export default {
  async fetch(request, env) {
    const { events } = await request.json();
    await env.EVENTS_QUEUE.sendBatch([{ body: { v: 1, events }, contentType: "json" }]);
    return new Response('{"accepted":50,"rejected":[]}', { status: 202 });
  },
};`;

/** Consumes layers-events and throws the events away (counting them), so queue memory stays flat. */
const SINK = `
let messages = 0, events = 0;
export default {
  async queue(batch) { for (const m of batch.messages) { messages++; events += m.body.events.length; } batch.ackAll(); },
  async fetch() { return Response.json({ messages, events }); },
};`;

/**
 * (a) Requests per second through the real ingest Worker (bundled as deploys bundle it, configured from
 * wrangler.toml, key lookup in Postgres via the WebSocket bridge, real queue) against a bare Worker in the
 * same workerd, same HTTP client and concurrency. Rounds rotate which Worker goes first, so a noisy
 * neighbour on the shared machine hurts every side alike.
 */
export async function benchIngest(resources: Resources, options: IngestOptions): Promise<IngestFigures> {
  const target = new URL(options.ownerUrl);
  // workerd has no TCP Postgres driver: the Neon driver's WebSocket goes through this bridge, as in dev.
  const bridge = await startWsBridge({ host: target.hostname, port: Number(target.port || 5432) });
  resources.add("ws bridge (ingest)", () => bridge.close());

  // Its own file name: `npm test` bundles to .wrangler/test-build/ingest.js and may run at the same time.
  const scriptPath = await bundleWorker("workers/ingest/index.ts", "bench-ingest");
  // Quiet wrangler's "Using secrets defined in .dev.vars" (npm run dev writes one); the DB vars from
  // there are replaced below anyway.
  process.env.WRANGLER_LOG ??= "warn";
  const fromConfig = unstable_getMiniflareWorkerOptions(path.join(ROOT, "wrangler.toml"))
    .workerOptions as WorkerOptions;
  const compatibilityDate = fromConfig.compatibilityDate ?? "2026-04-20";
  let firstError: string | undefined;

  const mf = withoutForeignSignalHandlers(
    () =>
      new Miniflare({
        // Geo as Cloudflare would fill it in; also spares Miniflare fetching a real cf object.
        cf: { country: "DE", region: "Bavaria" },
        structuredWorkerdLogs: true,
        // The ingest Worker logs one line per request; keep the cost of producing it, drop the output.
        handleStructuredLogs: ({ level, message }: { level: string; message: string }) => {
          if (level === "error" || message.includes('"level":"error"')) firstError ??= message;
        },
        workers: [
          {
            ...fromConfig,
            name: "layers",
            modules: true,
            scriptPath,
            routes: ["layers.bench/*"],
            bindings: {
              ...fromConfig.bindings,
              DATABASE_URL: roleUrl(options.ownerUrl, "layers_ingest"),
              NEON_WS_PROXY: `127.0.0.1:${bridge.port}/v1`,
            },
            // Production's limit (1000 per 10 s per key) would turn most of this load into 429s.
            ratelimits: { INGEST_RATE_LIMITER: { simple: { limit: 1_000_000_000, period: 60 } } },
          },
          { name: "bare", modules: true, script: BARE, compatibilityDate, routes: ["bare.bench/*"] },
          {
            name: "passthrough",
            modules: true,
            script: PASSTHROUGH,
            compatibilityDate,
            routes: ["passthrough.bench/*"],
            queueProducers: fromConfig.queueProducers,
          },
          {
            name: "sink",
            modules: true,
            script: SINK,
            compatibilityDate,
            routes: ["sink.bench/*"],
            queueConsumers: { "layers-events": { maxBatchSize: 100, maxBatchTimeout: 0.05 } },
          },
        ],
      }),
  );
  const disposeMiniflare = resources.add("miniflare", () => mf.dispose());
  const url = await mf.ready;

  const nowMs = Date.now();
  const bodies = Array.from({ length: 64 }, (_, batch) =>
    ingestBody("ingest", batch, options.batchSize, nowMs),
  );
  const headers = {
    authorization: `Bearer ${options.sdkKey}`,
    "content-type": "application/json",
    "user-agent": BROWSER_USER_AGENT,
  };
  const targetOf = (side: Side): LoadTarget => ({
    url,
    host: `${side}.bench`,
    path: "/l/events",
    headers,
    bodies,
  });
  const load = { concurrency: options.concurrency, expectStatus: 202 };
  const check = (name: string, result: LoadResult): LoadResult => {
    const { unexpected } = result;
    if (unexpected.count > 0) {
      throw new Error(
        `${name}: ${unexpected.count} of ${result.requests} responses were not 202 ` +
          `(first: ${unexpected.firstStatus} ${unexpected.firstBody})${firstError ? `\nWorker log: ${firstError}` : ""}`,
      );
    }
    return result;
  };

  // Warm-up: JIT, sockets, and the ingest Worker's first SDK key lookup (then cached per isolate).
  let enqueuedRequests = 0;
  for (const side of SIDES) {
    const result = check(`${side} warm-up`, await runLoad(targetOf(side), { ...load, durationMs: 1_500 }));
    if (side !== "bare") enqueuedRequests += result.requests;
  }

  const totals = Object.fromEntries(
    SIDES.map((side) => [side, { requests: 0, elapsedMs: 0, workerdMs: 0 }]),
  ) as Record<Side, { requests: number; elapsedMs: number; workerdMs: number }>;
  const durationMs = (options.seconds * 1_000) / options.rounds;
  for (let round = 0; round < options.rounds; round++) {
    const order = SIDES.map((_, i) => SIDES[(i + round) % SIDES.length]!);
    for (const side of order) {
      const cpuBefore = workerdCpuMs();
      const result = check(side, await runLoad(targetOf(side), { ...load, durationMs }));
      const cpuAfter = workerdCpuMs();
      totals[side].requests += result.requests;
      totals[side].elapsedMs += result.elapsedMs;
      totals[side].workerdMs += (cpuAfter ?? Number.NaN) - (cpuBefore ?? Number.NaN);
      if (side !== "bare") enqueuedRequests += result.requests;
    }
  }

  const expected = enqueuedRequests * options.batchSize;
  const delivered = await waitForDelivery(mf, expected);
  await disposeMiniflare();

  const throughput = (side: Side): Throughput => {
    const t = totals[side];
    return {
      requests: t.requests,
      elapsedMs: t.elapsedMs,
      requestsPerSecond: t.requests / (t.elapsedMs / 1_000),
      workerdCpuMsPerRequest: Number.isNaN(t.workerdMs) ? undefined : t.workerdMs / t.requests,
    };
  };
  const layers = throughput("layers");
  const bare = throughput("bare");
  return {
    layers,
    bare,
    passthrough: throughput("passthrough"),
    ratio: layers.requestsPerSecond / bare.requestsPerSecond,
    delivered: { events: delivered, expected },
  };
}

/** Waits (up to 60 s) until the sink has received every accepted event; returns how many it got. */
async function waitForDelivery(mf: Miniflare, expected: number): Promise<number> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const response = await mf.dispatchFetch("http://sink.bench/");
    const { events } = (await response.json()) as { events: number };
    if (events >= expected || Date.now() > deadline) return events;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
