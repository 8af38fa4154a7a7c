import { gzipSync } from "node:zlib";
import { build } from "esbuild";
import { createLayers, memoryStorage } from "../../sdk/src";

// (i) The client SDK: the size a page pays for the <script> bundle (minified IIFE, gzip -9, built here the
// way sdk/build.ts builds it) and the cost of one track() call on this machine's V8, as measured values.

export const SDK_TARGETS = { gzipBytes: 6 * 1024, trackMicroseconds: 20 } as const;

export interface SdkFigures {
  minBytes: number;
  gzipBytes: number;
  /** Median over rounds of the time inside track() alone (the write to storage and the send come after). */
  trackMicroseconds: number;
  /** Everything one event costs: track(), the write to (memory) storage, batching and a send answered 202. */
  amortizedMicroseconds: number;
  calls: number;
}

export async function benchSdk(calls = 20_000, rounds = 7): Promise<SdkFigures> {
  const bundle = await build({
    entryPoints: [new URL("../../sdk/src/index.ts", import.meta.url).pathname],
    bundle: true,
    minify: true,
    format: "iife",
    globalName: "Layers",
    platform: "browser",
    target: "es2020",
    write: false,
  });
  const code = bundle.outputFiles[0]!.contents;

  const accepted = { status: 202, headers: new Headers(), text: async () => '{"accepted":20,"rejected":[]}' };
  const layers = createLayers({
    key: "lp_pk_benchKey000000000000000000000000",
    endpoint: "https://ingest.bench",
    storage: memoryStorage(),
    fetch: async () => accepted,
    maxQueueSize: calls * 2,
  });
  await layers.ready;
  layers.identify("user-1");
  const properties = { plan: "pro", value: 9.99, currency: "EUR", items: 3 };
  const chunk = 1_000;
  const sync: number[] = [];
  const whole: number[] = [];
  for (let round = 0; round <= rounds; round++) {
    let inside = 0;
    const start = performance.now();
    for (let done = 0; done < calls; done += chunk) {
      const t0 = performance.now();
      for (let i = 0; i < chunk; i++) layers.track("view_item", properties);
      inside += performance.now() - t0;
      await layers.flush();
    }
    const total = performance.now() - start;
    if (round === 0) continue; // warm-up
    sync.push((inside * 1000) / calls);
    whole.push((total * 1000) / calls);
  }
  await layers.shutdown();
  return {
    minBytes: code.byteLength,
    gzipBytes: gzipSync(code, { level: 9 }).byteLength,
    trackMicroseconds: median(sync),
    amortizedMicroseconds: median(whole),
    calls,
  };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

/**
 * The <script> files of popular analytics SDKs, for comparison. Recorded, not measured by this bench (no
 * third-party SDK is installed here): measured once, on 2026-11-26, from the npm registry's tarballs with
 * `npm pack <package>@<version>` and `gzip -9 -c <file> | wc -c`. Re-record them the same way.
 */
export const OTHER_SDKS = [
  {
    name: "@segment/analytics-next 1.84.3",
    file: "dist/umd/standalone.js",
    minBytes: 114_551,
    gzipBytes: 31_294,
  },
  {
    name: "@amplitude/analytics-browser 2.48.1",
    file: "lib/scripts/amplitude-min.js",
    minBytes: 253_718,
    gzipBytes: 68_719,
  },
  { name: "posthog-js 1.449.2", file: "dist/array.js", minBytes: 379_782, gzipBytes: 121_980 },
] as const;

export function sdkLines(f: SdkFigures): string {
  const verdict = (pass: boolean) => (pass ? "PASS" : "MISS");
  const kb = (bytes: number) => `${(bytes / 1024).toFixed(1)} KB`;
  return [
    `(i) sdk     browser bundle ${kb(f.minBytes)} min, ${kb(f.gzipBytes)} min+gzip (${f.gzipBytes} bytes; target ≤ ${kb(SDK_TARGETS.gzipBytes)}) ${verdict(f.gzipBytes <= SDK_TARGETS.gzipBytes)}`,
    `            track() ${f.trackMicroseconds.toFixed(2)} µs per call (target ≤ ${SDK_TARGETS.trackMicroseconds} µs) ${verdict(f.trackMicroseconds <= SDK_TARGETS.trackMicroseconds)}; ` +
      `with storage write, batching and a 202 send: ${f.amortizedMicroseconds.toFixed(2)} µs per event (median of rounds of ${f.calls.toLocaleString("en-US")} calls)`,
    "            for comparison, recorded 2026-11-26 from the npm tarballs (not measured by this run; test/bench/sdk.ts):",
    ...OTHER_SDKS.map(
      (o) =>
        `              ${o.name} ${o.file}: ${kb(o.minBytes)} min, ${kb(o.gzipBytes)} min+gzip (${(o.gzipBytes / f.gzipBytes).toFixed(1)}× ours)`,
    ),
  ].join("\n");
}
