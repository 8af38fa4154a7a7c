import path from "node:path";
import { neon, neonConfig } from "@neondatabase/serverless";
import { sql } from "kysely";
import { Miniflare, type WorkerOptions } from "miniflare";
import { unstable_getMiniflareWorkerOptions } from "wrangler";
import { bootstrapOrg } from "../../functions/org/bootstrapOrg";
import { createProject } from "../../functions/projects/store";
import { bundleWorker, ROOT } from "../../scripts/local/bundle";
import { roleUrl } from "../../scripts/local/migrate";
import { createNodeDb } from "../../scripts/local/node-db";
import { findPgBouncer, startPgBouncer } from "../../scripts/local/pgbouncer";
import { startWsBridge } from "../../scripts/local/ws-bridge";
import { withTenant } from "../../shared/db";
import { startChild } from "./child";
import { type LoadResult, type LoadTarget, percentile, runLoad } from "./http";
import { processCpuMs, workerdCpuMs } from "./proc";
import { startWorkerProfile } from "./profile";
import { type Resources, withoutForeignSignalHandlers } from "./resources";

/** Miniflare's inspector port when BENCH_API_PROFILE asks for a CPU profile of the API Worker. */
const INSPECTOR_PORT = 9349;

export interface ApiOptions {
  ownerUrl: string;
  concurrency: number;
  /** Measured seconds per side, split over `rounds` rotating runs. */
  seconds: number;
  rounds: number;
  /** "pgbouncer" (when installed): production's shape, Neon's pooled endpoint. "direct": a backend each. */
  pooler: "pgbouncer" | "direct";
  /** Where to write a CPU profile of the API Worker during the first measured run of `side`, if anywhere. */
  profile?: { file: string; side: string } | undefined;
}

export interface Latency {
  requests: number;
  requestsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  /** CPU of the workerd process per request (Linux), including work deferred past the response. */
  workerdCpuMsPerRequest: number | undefined;
}

export interface ApiComparison {
  api: Latency;
  bare: Latency;
  ratio: number;
}

export interface ApiFigures {
  /** Authenticated GET /v1/projects (a page of 3 projects) vs the bare Hono route, at the bench's concurrency. */
  read: ApiComparison;
  /** The same GET with one client at a time: latency without queueing. */
  readSerial: ApiComparison;
  /** The same GET served by a long-running Node process with a pg pool (test/bench/nodeApi.server.ts). */
  node: { read: Latency; readSerial: Latency; ratio: number };
  /** p50 of one read's database part alone: a [tenant settings; query] transaction over SQL-over-HTTP. */
  databaseRoundTripMs: number;
  /** CPU of the SQL-over-HTTP stand-in per API read (its work is Neon's in production). */
  standInCpuMsPerRead: number | undefined;
  /** POST /v1/projects with a fresh Idempotency-Key each vs the bare Hono route. */
  write: ApiComparison;
  /** How the Worker's changes reached Postgres: through a transaction pooler (as in production) or directly. */
  pooler: "pgbouncer" | "direct";
  /** Projects the write org holds afterwards: proof that every 201 created exactly one. */
  created: { projects: number; expected: number };
}

type Side =
  | "api-get"
  | "bare-get"
  | "node-get"
  | "api-post"
  | "bare-post"
  | "api-get-serial"
  | "bare-get-serial"
  | "node-get-serial";
const SIDES: readonly Side[] = [
  "api-get",
  "bare-get",
  "node-get",
  "api-post",
  "bare-post",
  "api-get-serial",
  "bare-get-serial",
  "node-get-serial",
];
const READ_PROJECTS = 3;

/**
 * (d) Requests per second and latency of the partner API Worker (bundled as deploys bundle it, configured
 * from workers/api/wrangler.toml with its rate-limit Durable Object, Postgres via the WebSocket bridge)
 * against a bare Hono app in the same workerd, same HTTP client and concurrency. Rounds rotate the order,
 * so a noisy neighbour hurts every side alike.
 */
export async function benchApi(resources: Resources, options: ApiOptions): Promise<ApiFigures> {
  // Separate orgs: POSTs add projects, which must not change the page the GETs read.
  const setupDb = createNodeDb(options.ownerUrl, 1);
  const closeSetupDb = resources.add("api setup db", () => setupDb.destroy());
  const reader = await bootstrapOrg(setupDb, { orgName: "Bench reads", keyName: "Bench reader" });
  await withTenant(setupDb, reader.org.id, async (tx) => {
    for (let n = 1; n <= READ_PROJECTS; n++) await createProject(tx, reader.org.id, { name: `Bench ${n}` });
  });
  const writer = await bootstrapOrg(setupDb, { orgName: "Bench writes", keyName: "Bench writer" });

  const server = new URL(options.ownerUrl);
  let target = { host: server.hostname, port: Number(server.port || 5432) };
  const binary = options.pooler === "pgbouncer" ? findPgBouncer() : undefined;
  const pooler = binary ? "pgbouncer" : "direct";
  if (binary) {
    const bouncer = await startPgBouncer(binary, target, ["layers_api"]);
    resources.add("pgbouncer (api)", () => bouncer.stop());
    target = { host: "127.0.0.1", port: bouncer.port };
  }
  const bridge = await startWsBridge(target);
  const closeBridge = resources.add("ws bridge (api)", () => bridge.close());
  // Reads go over SQL-over-HTTP: the stand-in pools its connections itself, as Neon's endpoint does.
  const neonHttp = await startChild("test/bench/neonHttp.server.ts", {
    TARGET_HOST: server.hostname,
    TARGET_PORT: server.port || "5432",
  });
  const closeNeonHttp = resources.add("neon http (api)", () => neonHttp.stop());
  const node = await startChild("test/bench/nodeApi.server.ts", {
    DATABASE_URL: roleUrl(options.ownerUrl, "layers_api"),
  });
  const stopNode = resources.add("node api server", () => node.stop());

  // Own file names: `npm test` bundles to .wrangler/test-build/api.js and may run at the same time.
  const [apiScript, bareScript] = await Promise.all([
    bundleWorker("workers/api/index.ts", "bench-api"),
    bundleWorker("test/bench/bareApi.worker.ts", "bench-api-bare"),
  ]);
  process.env.WRANGLER_LOG ??= "warn";
  const fromConfig = unstable_getMiniflareWorkerOptions(path.join(ROOT, "workers/api/wrangler.toml"))
    .workerOptions as WorkerOptions;
  const compatibilityDate = fromConfig.compatibilityDate ?? "2026-04-20";
  let firstError: string | undefined;

  const mf = withoutForeignSignalHandlers(
    () =>
      new Miniflare({
        structuredWorkerdLogs: true,
        ...(options.profile ? { inspectorPort: INSPECTOR_PORT } : {}),
        handleStructuredLogs: ({ level, message }: { level: string; message: string }) => {
          if (level === "error" || message.includes('"level":"error"')) firstError ??= message;
        },
        workers: [
          {
            ...fromConfig,
            name: "api",
            modules: true,
            scriptPath: apiScript,
            routes: ["api.bench/*"],
            bindings: {
              ...fromConfig.bindings,
              DATABASE_URL: roleUrl(options.ownerUrl, "layers_api"),
              NEON_WS_PROXY: `127.0.0.1:${bridge.port}/v1`,
              NEON_HTTP_PROXY: `127.0.0.1:${neonHttp.port}`,
              // The most the config schema allows; production's 600 a minute would make this load 429s.
              API_RATE_LIMIT_PER_MINUTE: "100000",
            },
            ratelimits: { API_RATE_LIMITER: { simple: { limit: 1_000_000_000, period: 60 } } },
          },
          {
            name: "bare",
            modules: true,
            scriptPath: bareScript,
            compatibilityDate,
            routes: ["bare.bench/*"],
          },
        ],
      }),
  );
  const disposeMiniflare = resources.add("miniflare (api)", () => mf.dispose());
  const url = await mf.ready;

  const names = Array.from({ length: 64 }, (_, n) => JSON.stringify({ name: `Bench project ${n}` }));
  const idempotencyPrefix = `bench-${Date.now()}`;
  let idempotencyKeys = 0;
  const nodeUrl = new URL(`http://127.0.0.1:${node.port}`);
  const targetOf = (side: Side): LoadTarget => {
    const [worker, verb] = side.split("-") as ["api" | "bare" | "node", "get" | "post"];
    const common = {
      url: worker === "node" ? nodeUrl : url,
      host: `${worker}.bench`,
      path: "/v1/projects",
    };
    if (verb === "get") {
      return {
        ...common,
        method: "GET",
        headers: { authorization: `Bearer ${reader.key.secret}` },
        bodies: [],
      };
    }
    return {
      ...common,
      method: "POST",
      headers: { authorization: `Bearer ${writer.key.secret}`, "content-type": "application/json" },
      headersFor: () => ({ "idempotency-key": `${idempotencyPrefix}-${idempotencyKeys++}` }),
      bodies: names,
    };
  };
  const expectStatus = (side: Side) => (side.includes("-get") ? 200 : 201);
  const check = (name: string, result: LoadResult, status: number): LoadResult => {
    const { unexpected } = result;
    if (unexpected.count > 0) {
      throw new Error(
        `${name}: ${unexpected.count} of ${result.requests} responses were not ${status} ` +
          `(first: ${unexpected.firstStatus} ${unexpected.firstBody})${firstError ? `\nWorker log: ${firstError}` : ""}`,
      );
    }
    return result;
  };
  const run = async (side: Side, durationMs: number) => {
    const status = expectStatus(side);
    const result = await runLoad(targetOf(side), {
      concurrency: side.endsWith("-serial") ? 1 : options.concurrency,
      durationMs,
      expectStatus: status,
    });
    return check(side, result, status);
  };

  // Warm-up: JIT, sockets, the first Postgres connections.
  let apiCreated = 0;
  for (const side of SIDES) {
    const result = await run(side, 1_000);
    if (side === "api-post") apiCreated += result.requests;
  }

  const totals = Object.fromEntries(
    SIDES.map((side) => [side, { requests: 0, elapsedMs: 0, workerdMs: 0, latenciesMs: [] as number[] }]),
  ) as Record<Side, { requests: number; elapsedMs: number; workerdMs: number; latenciesMs: number[] }>;
  const durationMs = (options.seconds * 1_000) / options.rounds;
  let standInMs = 0;
  for (let round = 0; round < options.rounds; round++) {
    const order = SIDES.map((_, i) => SIDES[(i + round) % SIDES.length]!);
    for (const side of order) {
      const cpu = () => (side.startsWith("node-") ? processCpuMs(node.pid) : workerdCpuMs());
      const standInBefore = processCpuMs(neonHttp.pid);
      const cpuBefore = cpu();
      const profile = options.profile;
      const stopProfile =
        profile && round === 0 && side === profile.side
          ? await startWorkerProfile(INSPECTOR_PORT, "api", profile.file)
          : undefined;
      const result = await run(side, durationMs);
      await stopProfile?.();
      const cpuAfter = cpu();
      if (side === "api-get") {
        standInMs += (processCpuMs(neonHttp.pid) ?? Number.NaN) - (standInBefore ?? Number.NaN);
      }
      const t = totals[side];
      t.requests += result.requests;
      t.elapsedMs += result.elapsedMs;
      t.workerdMs += (cpuAfter ?? Number.NaN) - (cpuBefore ?? Number.NaN);
      for (const ms of result.latenciesMs) t.latenciesMs.push(ms);
      if (side === "api-post") apiCreated += result.requests;
    }
  }
  await disposeMiniflare();
  await closeBridge();
  await stopNode();
  const databaseRoundTripMs = await httpRoundTripMs(
    roleUrl(options.ownerUrl, "layers_api"),
    `127.0.0.1:${neonHttp.port}`,
    reader.org.id,
  );
  await closeNeonHttp();

  const { count } = await setupDb
    .selectFrom("projects")
    .select(sql<string>`count(*)`.as("count"))
    .where("org_id", "=", writer.org.id)
    .executeTakeFirstOrThrow();
  await closeSetupDb();

  const latency = (side: Side): Latency => {
    const t = totals[side];
    return {
      requests: t.requests,
      requestsPerSecond: t.requests / (t.elapsedMs / 1_000),
      p50Ms: percentile(t.latenciesMs, 50),
      p99Ms: percentile(t.latenciesMs, 99),
      workerdCpuMsPerRequest: Number.isNaN(t.workerdMs) ? undefined : t.workerdMs / t.requests,
    };
  };
  const compare = (api: Latency, bare: Latency): ApiComparison => ({
    api,
    bare,
    ratio: api.requestsPerSecond / bare.requestsPerSecond,
  });
  return {
    read: compare(latency("api-get"), latency("bare-get")),
    readSerial: compare(latency("api-get-serial"), latency("bare-get-serial")),
    node: {
      read: latency("node-get"),
      readSerial: latency("node-get-serial"),
      ratio: latency("api-get").requestsPerSecond / latency("node-get").requestsPerSecond,
    },
    databaseRoundTripMs,
    standInCpuMsPerRead: Number.isNaN(standInMs) ? undefined : standInMs / totals["api-get"].requests,
    write: compare(latency("api-post"), latency("bare-post")),
    pooler,
    created: { projects: Number(count), expected: apiCreated },
  };
}

/**
 * What one read's database part costs on its own: p50 of a read-only [tenant settings; query] transaction
 * over SQL-over-HTTP, sent from Node with the Neon driver, one at a time.
 */
async function httpRoundTripMs(databaseUrl: string, proxy: string, orgId: string): Promise<number> {
  neonConfig.fetchEndpoint = () => `http://${proxy}/sql`;
  const q = neon(databaseUrl, { fullResults: true });
  const timings: number[] = [];
  for (let i = 0; i < 300; i++) {
    const started = performance.now();
    await q.transaction(
      [
        q.query("select set_config('app.org_id', $1, true), set_config('role', 'layers_api', true)", [orgId]),
        q.query("select id from projects order by created_at desc, id desc limit 21"),
      ],
      { readOnly: true },
    );
    if (i >= 50) timings.push(performance.now() - started);
  }
  return percentile(timings, 50);
}
