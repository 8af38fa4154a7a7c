import path from "node:path";
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
import { type LoadResult, type LoadTarget, percentile, runLoad } from "./http";
import { workerdCpuMs } from "./proc";
import { type Resources, withoutForeignSignalHandlers } from "./resources";

export interface ApiOptions {
  ownerUrl: string;
  concurrency: number;
  /** Measured seconds per side, split over `rounds` rotating runs. */
  seconds: number;
  rounds: number;
  /** "pgbouncer" (when installed): production's shape, Neon's pooled endpoint. "direct": a backend each. */
  pooler: "pgbouncer" | "direct";
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
  /** Authenticated GET /v1/projects (a page of 3 projects) vs the bare Hono route. */
  read: ApiComparison;
  /** POST /v1/projects with a fresh Idempotency-Key each vs the bare Hono route. */
  write: ApiComparison;
  /** How the Worker reached Postgres: through a transaction pooler (as in production) or directly. */
  pooler: "pgbouncer" | "direct";
  /** Projects the write org holds afterwards: proof that every 201 created exactly one. */
  created: { projects: number; expected: number };
}

type Side = "api-get" | "bare-get" | "api-post" | "bare-post";
const SIDES: readonly Side[] = ["api-get", "bare-get", "api-post", "bare-post"];
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
              // The most the config schema allows; production's 600 a minute would make this load 429s.
              API_RATE_LIMIT_PER_MINUTE: "100000",
            },
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
  const targetOf = (side: Side): LoadTarget => {
    const [worker, verb] = side.split("-") as ["api" | "bare", "get" | "post"];
    const common = { url, host: `${worker}.bench`, path: "/v1/projects" };
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
  const expectStatus = (side: Side) => (side.endsWith("-get") ? 200 : 201);
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
      concurrency: options.concurrency,
      durationMs,
      expectStatus: status,
    });
    return check(side, result, status);
  };

  // Warm-up: JIT, sockets, the rate limiter's Durable Object, the first Postgres connections.
  let apiCreated = 0;
  for (const side of SIDES) {
    const result = await run(side, 1_000);
    if (side === "api-post") apiCreated += result.requests;
  }

  const totals = Object.fromEntries(
    SIDES.map((side) => [side, { requests: 0, elapsedMs: 0, workerdMs: 0, latenciesMs: [] as number[] }]),
  ) as Record<Side, { requests: number; elapsedMs: number; workerdMs: number; latenciesMs: number[] }>;
  const durationMs = (options.seconds * 1_000) / options.rounds;
  for (let round = 0; round < options.rounds; round++) {
    const order = SIDES.map((_, i) => SIDES[(i + round) % SIDES.length]!);
    for (const side of order) {
      const cpuBefore = workerdCpuMs();
      const result = await run(side, durationMs);
      const cpuAfter = workerdCpuMs();
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
    write: compare(latency("api-post"), latency("bare-post")),
    pooler,
    created: { projects: Number(count), expected: apiCreated },
  };
}
