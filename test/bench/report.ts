import os from "node:os";
import type { ApiFigures, Latency } from "./api";
import type { CpuFigures } from "./cpu";
import type { IngestFigures } from "./ingest";
import type { PersistFigures } from "./persist";
import type { BundleSize, StartupFigures, WorkerdCpuFigures } from "./workerd";

// Targets are ratios against baselines measured in the same run (or CPU time, which a busy neighbour
// inflates far less than wall time). A miss is reported, not thrown: the bench is a report.
export const TARGETS = {
  ingestRatio: 0.5,
  persistRatio: 0.6,
  cpuMsPerBatch: 1,
  apiReadRatio: 0.3,
  /** One client at a time: the API's p50 may exceed bare Hono's by one database round trip plus this. */
  apiSerialOverheadMs: 2,
  apiReadCpuMs: 1.5,
  apiWriteRatio: 0.2,
  /** Against a long-running Node process with a connection pool. */
  apiNodeRatio: 0.5,
} as const;

export interface BenchSettings {
  database: string;
  batchSize: number;
  concurrency: number;
  ingestSeconds: number;
  rows: number;
  eventsPerMessage: number;
  persistConcurrency: number;
  cpuRequests: number;
  apiSeconds: number;
}

const int = (n: number) => Math.round(n).toLocaleString("en-US");
const verdict = (pass: boolean) => (pass ? "PASS" : "MISS");

export function header(settings: BenchSettings): string {
  const cpu = os.cpus()[0]?.model.trim() ?? "unknown CPU";
  return [
    `Layers bench (node ${process.version}, ${os.availableParallelism()} cores, ${cpu}) — ratios against baselines measured in this run`,
    `database: ${settings.database}`,
  ].join("\n");
}

export function ingestLine(f: IngestFigures, s: BenchSettings): string {
  const pass = f.ratio >= TARGETS.ingestRatio;
  return (
    `(a) ingest  ${s.batchSize}-event batches, concurrency ${s.concurrency}, ${s.ingestSeconds} s per side: ` +
    `layers ${int(f.layers.requestsPerSecond)} req/s (${int(f.layers.requestsPerSecond * s.batchSize)} ev/s) | ` +
    `bare ${int(f.bare.requestsPerSecond)} req/s | ratio ${f.ratio.toFixed(2)} (target ≥ ${TARGETS.ingestRatio}) ${verdict(pass)}`
  );
}

export function ingestNote(f: IngestFigures): string {
  const lines = [
    `    ${int(f.layers.requests)} vs ${int(f.bare.requests)} requests measured, all 202; ` +
      `the queue consumer received ${int(f.delivered.events)} of ${int(f.delivered.expected)} enqueued events`,
    `    yardstick, no target: a Worker that only parses the body and enqueues its events does ` +
      `${int(f.passthrough.requestsPerSecond)} req/s (layers/yardstick ` +
      `${(f.layers.requestsPerSecond / f.passthrough.requestsPerSecond).toFixed(2)})`,
  ];
  const cpu = [f.layers, f.passthrough, f.bare].map((t) => t.workerdCpuMsPerRequest);
  if (cpu.every((ms) => ms !== undefined)) {
    const [layers, passthrough, bare] = cpu.map((ms) => (ms ?? 0).toFixed(2));
    lines.push(
      `    workerd CPU per request (whole process: entry, Worker, local queue, consumer): ` +
        `layers ${layers} ms | yardstick ${passthrough} ms | bare ${bare} ms`,
    );
  }
  return lines.join("\n");
}

export function persistLine(f: PersistFigures, s: BenchSettings): string {
  const pass = f.ratio >= TARGETS.persistRatio;
  return (
    `(b) persist ${int(s.rows)} events, ${s.eventsPerMessage} per message, ${s.persistConcurrency} connections: ` +
    `consumer ${int(f.persist.rowsPerSecond)} ev/s | COPY ${int(f.copy.rowsPerSecond)} rows/s | ` +
    `ratio ${f.ratio.toFixed(2)} (target ≥ ${TARGETS.persistRatio}) ${verdict(pass)}`
  );
}

export function persistSkipped(): string {
  return "(b) persist skipped: the COPY baseline needs a Postgres server (PGlite's socket has no COPY FROM STDIN)";
}

export function persistNote(f: PersistFigures): string {
  return (
    `    consumer: a project's messages of a queue batch in one statement, also upserting sdk_users ` +
    `(${int(f.users)} users) and event_daily_counts (${int(f.dailyCountRows)} rows); COPY writes sdk_events only; ` +
    `one statement per message (before grouping): ${int(f.perMessage.rowsPerSecond)} ev/s`
  );
}

export function cpuLine(f: CpuFigures, w: WorkerdCpuFigures | undefined, s: BenchSettings): string {
  // The target is judged inside workerd (where the Worker runs) when /proc allows measuring it there.
  const judged = w?.cpuMsPerBatch ?? f.cpuMsPerRequest;
  const pass = judged <= TARGETS.cpuMsPerBatch;
  const workerd = w ? `inside workerd ${w.cpuMsPerBatch.toFixed(2)} ms | ` : "";
  return (
    `(c) ingest handler CPU per ${s.batchSize}-event batch: ${workerd}in Node ${f.cpuMsPerRequest.toFixed(2)} ms ` +
    `(target ≤ ${TARGETS.cpuMsPerBatch} ms${w ? ", judged in workerd" : ""}) ${verdict(pass)}`
  );
}

export function cpuNote(f: CpuFigures, w: WorkerdCpuFigures | undefined): string {
  const lines = [
    `    Node: createIngestApp().fetch, ${int(f.requests)} sequential requests, whole-process CPU ` +
      `(GC and crypto threads included); wall ${f.wallMsPerRequest.toFixed(2)} ms per request`,
  ];
  if (w) {
    lines.push(
      `    workerd: the same app called ${int(w.batches)} times inside requests to a bench Worker, workerd's ` +
        `CPU from /proc minus the same loop without the app (${w.bareCpuMsPerBatch.toFixed(2)} ms per batch)`,
    );
  }
  return lines.join("\n");
}

export function bundleLines(sizes: BundleSize[], startup: StartupFigures): string {
  const kb = (n: number) => `${(n / 1024).toFixed(0)} KB`;
  return [
    `    bundles (esbuild as deployed, raw / gzip): ${sizes.map((b) => `${b.worker} ${kb(b.rawBytes)} / ${kb(b.gzipBytes)}`).join(" | ")}`,
    `    ingest startup: fresh workerd to first answer ${startup.ingestMs.toFixed(0)} ms vs bare Worker ` +
      `${startup.bareMs.toFixed(0)} ms: +${startup.ingestExtraMs.toFixed(0)} ms for loading the ingest bundle ` +
      `(median of ${startup.runs})`,
  ].join("\n");
}

const latency = (l: Latency) =>
  `${int(l.requestsPerSecond)} req/s (p50 ${l.p50Ms.toFixed(1)} ms, p99 ${l.p99Ms.toFixed(1)} ms)`;

export function apiLine(f: ApiFigures, s: BenchSettings): string {
  const pass = f.read.ratio >= TARGETS.apiReadRatio;
  const serialBound = f.readSerial.bare.p50Ms + f.databaseRoundTripMs + TARGETS.apiSerialOverheadMs;
  const writePass = f.write.ratio >= TARGETS.apiWriteRatio;
  const nodePass = f.node.ratio >= TARGETS.apiNodeRatio;
  return [
    `(d) api     GET /v1/projects (3 projects), concurrency ${s.concurrency}, ${s.apiSeconds} s per side: ` +
      `api ${latency(f.read.api)} | bare Hono ${latency(f.read.bare)} | ` +
      `ratio ${f.read.ratio.toFixed(2)} (target ≥ ${TARGETS.apiReadRatio}) ${verdict(pass)}`,
    `            the same GET, one client at a time: api p50 ${f.readSerial.api.p50Ms.toFixed(1)} ms | bare Hono ` +
      `p50 ${f.readSerial.bare.p50Ms.toFixed(1)} ms | one database round trip ${f.databaseRoundTripMs.toFixed(1)} ms ` +
      `(target: api ≤ bare + round trip + ${TARGETS.apiSerialOverheadMs} ms = ${serialBound.toFixed(1)} ms) ` +
      `${verdict(f.readSerial.api.p50Ms <= serialBound)}`,
    `            the same GET from a long-running Node process with a pg pool: ${latency(f.node.read)}, ` +
      `one at a time p50 ${f.node.readSerial.p50Ms.toFixed(1)} ms | api/node ${f.node.ratio.toFixed(2)} ` +
      `(target ≥ ${TARGETS.apiNodeRatio}) ${verdict(nodePass)}`,
    `            POST /v1/projects, a new Idempotency-Key each: ` +
      `api ${latency(f.write.api)} | bare Hono ${latency(f.write.bare)} | ratio ${f.write.ratio.toFixed(2)} ` +
      `(target ≥ ${TARGETS.apiWriteRatio}) ${verdict(writePass)}`,
  ].join("\n");
}

export function apiNote(f: ApiFigures): string {
  const lines = [
    `    ${int(f.read.api.requests)} vs ${int(f.read.bare.requests)} GETs and ${int(f.write.api.requests)} vs ` +
      `${int(f.write.bare.requests)} POSTs measured, all 200/201; the write org holds ${int(f.created.projects)} ` +
      `projects for ${int(f.created.expected)} POSTs answered 201 (warm-up included)`,
    "    reads (key lookup, query, request log) over SQL-over-HTTP through the local stand-in for Neon's endpoint " +
      "(scripts/local/neon-http.ts, pooled connections)",
    f.pooler === "pgbouncer"
      ? "    changes reach Postgres through a local PgBouncer in transaction mode, as production reaches Neon's pooled endpoint"
      : "    changes reach Postgres directly, a new backend per request (pgbouncer not installed, or BENCH_API_POOLER=direct)",
  ];
  const cpu = [f.read.api, f.read.bare, f.write.api, f.write.bare].map((l) => l.workerdCpuMsPerRequest);
  if (cpu.every((ms) => ms !== undefined)) {
    const [readApi, readBare, writeApi, writeBare] = cpu.map((ms) => (ms ?? 0).toFixed(2));
    const readPass = (f.read.api.workerdCpuMsPerRequest ?? 0) <= TARGETS.apiReadCpuMs;
    lines.push(
      `    workerd CPU per request (whole process, deferred request-log writes included): ` +
        `GET api ${readApi} ms (target ≤ ${TARGETS.apiReadCpuMs} ms ${verdict(readPass)}) | bare ${readBare} ms; ` +
        `POST api ${writeApi} ms | bare ${writeBare} ms; Node baseline process ` +
        `${(f.node.read.workerdCpuMsPerRequest ?? Number.NaN).toFixed(2)} ms per GET; the SQL-over-HTTP ` +
        `stand-in (Neon's work in production) ${(f.standInCpuMsPerRead ?? Number.NaN).toFixed(2)} ms per API GET`,
    );
  }
  return lines.join("\n");
}

export function reproduce(s: BenchSettings): string {
  return [
    "Reproduce: npm run bench",
    "  database: BENCH_DATABASE_URL, else TEST_DATABASE_URL, else postgres://postgres@127.0.0.1:5432/test if it",
    "            answers, else embedded PGlite; on a server a fresh layers_bench_<ts> database is created and dropped",
    `  knobs:    BENCH_ROWS=${s.rows} BENCH_INGEST_SECONDS=${s.ingestSeconds} BENCH_CONCURRENCY=${s.concurrency} ` +
      `BENCH_CPU_REQUESTS=${s.cpuRequests} BENCH_API_SECONDS=${s.apiSeconds}`,
    "            BENCH_PURGE_ROWS=500000 BENCH_RELAY_EVENTS=20000 BENCH_DSAR_TABLE_ROWS=2000000 BENCH_DSAR_USER_EVENTS=10000",
    "            BENCH_E2E_SECONDS=10 BENCH_E2E_BODIES=6000 BENCH_WEBHOOK_DELIVERIES=2000 BENCH_CONTENT_JOBS=40",
    "            BENCH_ONLY=ingest,persist,cpu,api,purge,relay,dsar,e2e,sdk,webhooks,content (any subset) BENCH_API_POOLER=direct (skip PgBouncer)",
  ].join("\n");
}
