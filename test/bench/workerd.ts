import { readFile } from "node:fs/promises";
import path from "node:path";
import { gzipSync } from "node:zlib";
import { Miniflare, type WorkerOptions } from "miniflare";
import { unstable_getMiniflareWorkerOptions } from "wrangler";
import { bundleWorker, ROOT } from "../../scripts/local/bundle";
import { roleUrl } from "../../scripts/local/migrate";
import { startWsBridge } from "../../scripts/local/ws-bridge";
import { BROWSER_USER_AGENT, ingestBody } from "./events";
import { workerdCpuMs } from "./proc";
import { type Resources, withoutForeignSignalHandlers } from "./resources";

// (c) continued, inside workerd: the ingest handler's CPU per batch, the Workers' bundle sizes and the
// ingest Worker's startup cost.

export interface WorkerdCpuFigures {
  batches: number;
  /** workerd CPU per batch, app minus the bare loop. */
  cpuMsPerBatch: number;
  bareCpuMsPerBatch: number;
}

const WORKERS = ["ingest", "consumer", "relay", "api", "cron", "dead-letters", "webhooks"] as const;

/**
 * workerd CPU of the ingest app per 50-event batch: a bench Worker (ingestCpu.worker.ts) calls the app `n`
 * times inside one request, and the workerd process's CPU time (/proc, Linux) is read before and after.
 * The same loop without the app is measured alike and subtracted, so request plumbing and Miniflare's
 * own share are not counted. Rounds alternate app and bare.
 */
export async function benchIngestCpuInWorkerd(
  resources: Resources,
  options: { ownerUrl: string; sdkKey: string; batchSize: number; batches: number },
): Promise<WorkerdCpuFigures | undefined> {
  if (workerdCpuMs() === undefined && process.platform !== "linux") return undefined;
  const target = new URL(options.ownerUrl);
  const bridge = await startWsBridge({ host: target.hostname, port: Number(target.port || 5432) });
  const closeBridge = resources.add("ws bridge (workerd cpu)", () => bridge.close());
  const fromConfig = unstable_getMiniflareWorkerOptions(path.join(ROOT, "wrangler.toml"))
    .workerOptions as WorkerOptions;
  const scriptPath = await bundleWorker("test/bench/ingestCpu.worker.ts", "bench-ingest-cpu");
  const mf = withoutForeignSignalHandlers(
    () =>
      new Miniflare({
        modules: true,
        scriptPath,
        compatibilityDate: fromConfig.compatibilityDate ?? "2026-04-20",
        compatibilityFlags: fromConfig.compatibilityFlags ?? [],
        bindings: {
          ...fromConfig.bindings,
          DATABASE_URL: roleUrl(options.ownerUrl, "layers_ingest"),
          NEON_WS_PROXY: `127.0.0.1:${bridge.port}/v1`,
        },
        // The app logs one line per request; the bench's stdout is the report.
        handleStructuredLogs: () => {},
        structuredWorkerdLogs: true,
      }),
  );
  const dispose = resources.add("miniflare (workerd cpu)", () => mf.dispose());
  try {
    await mf.ready;
    const body = ingestBody("wcpu", 0, options.batchSize, Date.now());
    const headers = { authorization: `Bearer ${options.sdkKey}`, "user-agent": BROWSER_USER_AGENT };
    const call = async (mode: "app" | "bare", n: number) => {
      const response = await mf.dispatchFetch(`http://bench/?mode=${mode}&n=${n}`, {
        method: "POST",
        headers,
        body,
      });
      const text = await response.text();
      if (response.status !== 200) throw new Error(`workerd cpu bench: ${response.status} ${text}`);
    };
    // Warm-up: the key lookup (then cached) and V8's optimisation of the hot path.
    await call("app", 300);
    await call("bare", 300);
    const per = 100;
    const rounds = Math.max(1, Math.round(options.batches / per));
    const cpu = { app: 0, bare: 0 };
    for (let round = 0; round < rounds; round++) {
      for (const mode of round % 2 === 0 ? (["app", "bare"] as const) : (["bare", "app"] as const)) {
        const before = workerdCpuMs() ?? Number.NaN;
        await call(mode, per);
        cpu[mode] += (workerdCpuMs() ?? Number.NaN) - before;
      }
    }
    if (Number.isNaN(cpu.app)) return undefined;
    const batches = rounds * per;
    return {
      batches,
      cpuMsPerBatch: (cpu.app - cpu.bare) / batches,
      bareCpuMsPerBatch: cpu.bare / batches,
    };
  } finally {
    await dispose();
    await closeBridge();
  }
}

export interface BundleSize {
  worker: string;
  rawBytes: number;
  gzipBytes: number;
}

/** Each Worker bundled as deploys bundle it (esbuild, scripts/local/bundle.ts), raw and gzipped. */
export async function bundleSizes(): Promise<BundleSize[]> {
  const out: BundleSize[] = [];
  for (const worker of WORKERS) {
    const file = await bundleWorker(`workers/${worker}/index.ts`, `size-${worker}`, "bench-size");
    const bytes = await readFile(file);
    out.push({ worker, rawBytes: bytes.byteLength, gzipBytes: gzipSync(bytes).byteLength });
  }
  return out;
}

export interface StartupFigures {
  /** Median time from a new workerd to its first answer, ingest Worker minus a bare Worker. */
  ingestExtraMs: number;
  ingestMs: number;
  bareMs: number;
  runs: number;
}

/**
 * The ingest Worker's startup cost: a fresh workerd (new Miniflare) with only that Worker, timed from
 * creation to its first answer (workerd compiles and evaluates the modules when it loads the Worker), the
 * same for a bare Worker, medians over `runs` alternating starts. The difference is what our bundle adds to
 * a cold start. The first request answers 401 (no key), so no database is involved.
 */
export async function ingestStartup(runs: number): Promise<StartupFigures> {
  // Both as inline scripts, so Miniflare handles them alike (only the code differs).
  const ingest = await readFile(await bundleWorker("workers/ingest/index.ts", "bench-startup"), "utf8");
  const fromConfig = unstable_getMiniflareWorkerOptions(path.join(ROOT, "wrangler.toml"))
    .workerOptions as WorkerOptions;
  const bare = `export default { fetch() { return new Response("no", { status: 401 }); } };`;
  const times = { ingest: [] as number[], bare: [] as number[] };
  for (let i = 0; i < runs; i++) {
    for (const side of ["ingest", "bare"] as const) {
      const started = performance.now();
      const mf = withoutForeignSignalHandlers(
        () =>
          new Miniflare({
            modules: true,
            script: side === "ingest" ? ingest : bare,
            compatibilityDate: fromConfig.compatibilityDate ?? "2026-04-20",
            bindings: { DATABASE_URL: "postgres://nobody@127.0.0.1:1/none" },
            ratelimits: { INGEST_RATE_LIMITER: { simple: { limit: 1, period: 60 } } },
          }),
      );
      try {
        const response = await mf.dispatchFetch("http://bench/l/events", { method: "POST", body: "{}" });
        await response.arrayBuffer();
        times[side].push(performance.now() - started);
      } finally {
        await mf.dispose();
      }
    }
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? Number.NaN;
  const ingestMs = median(times.ingest);
  const bareMs = median(times.bare);
  return { ingestExtraMs: ingestMs - bareMs, ingestMs, bareMs, runs };
}
