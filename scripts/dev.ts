// npm run dev: the whole system on one machine, one command.
//  1. Postgres: DATABASE_URL if set, else the embedded PGlite with its data under .data/pg.
//  2. the migrations applied; the demo org/project/keys seeded, only into a local database (they are public).
//  3. The WebSocket-to-TCP bridge the Neon driver needs to reach a plain Postgres, and a stand-in for Neon's
//     SQL-over-HTTP endpoint (the partner API's reads).
//  4. A local S3-API server (s3rver, files under .data/s3): the audit archive and the dead letters.
//  5. Every Worker in one Miniflare (the workerd runtime wrangler uses), so they share the local queues
//     exactly as the deployed Workers share Cloudflare's: ingest on :8787, the partner API on :8788, Cron
//     runs on :8789 (and every 5 minutes by itself). A change to the code rebuilds and reloads them.
//  6. With the demo keys: the SDK's example page on :8790/example/ (another origin than the ingest).
// Ctrl-C stops everything this script started.
import { watch } from "node:fs";
import { mkdir } from "node:fs/promises";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import path from "node:path";
import { Readable } from "node:stream";
import { Miniflare, type WorkerOptions } from "miniflare";
import { bundleWorker, ROOT } from "./local/bundle";
import { type EmbeddedPostgres, startEmbeddedPostgres } from "./local/embedded-postgres";
import { startExampleSite } from "./local/exampleSite";
import { migrate, roleUrl } from "./local/migrate";
import { startNeonHttp } from "./local/neon-http";
import { createNodeDb } from "./local/node-db";
import { createLocalS3rver } from "./local/s3rver";
import { DEMO, isLocalDatabase, seedDemo } from "./local/seed";
import { WORKERS, type WorkerName, workerOptions } from "./local/workers";
import { startWsBridge } from "./local/ws-bridge";

const DATA_DIR = path.resolve(process.env.LAYERS_DATA_DIR ?? path.join(ROOT, ".data"));
const PORT = Number(process.env.PORT ?? 8787);
const API_PORT = Number(process.env.API_PORT ?? 8788);
const CRON_PORT = Number(process.env.CRON_PORT ?? 8789);
const EXAMPLE_PORT = Number(process.env.EXAMPLE_PORT ?? 8790);
const S3_PORT = Number(process.env.S3_PORT ?? 4569);
const BRIDGE_PORT = Number(process.env.BRIDGE_PORT ?? 5433);
const NEON_HTTP_PORT = Number(process.env.NEON_HTTP_PORT ?? 5434);
const EMBEDDED_PG_PORT = Number(process.env.EMBEDDED_PG_PORT ?? 5440);
/** Minutes between automatic Cron runs (production: every 5); 0 runs Cron only when asked. */
const CRON_MINUTES = Number(process.env.DEV_CRON_MINUTES ?? 5);
const BUCKETS = ["layers-audit-archive", "layers-dead-letters", "layers-media", "layers-exports"];
// s3rver accepts any credentials; these only have to be well-formed for the SDK to sign with.
const S3_VARS = {
  S3_ENDPOINT: `http://127.0.0.1:${S3_PORT}`,
  S3_REGION: "us-east-1",
  S3_ACCESS_KEY_ID: "S3RVER",
  S3_SECRET_ACCESS_KEY: "S3RVER",
};
// Destination-token keyring (API and relay): a fixed local-only key, so tokens saved in .data/pg stay
// readable across runs. Production keys are Worker secrets (README, "Destination token keys").
const LOCAL_KEYRING = {
  DESTINATION_KEYS: '{"local-dev":"bG9jYWwtZGV2ZWxvcG1lbnQtb25seS1rZXktMDAwMDA="}',
  DESTINATION_KEY_ID: "local-dev",
};
/** Where the ad platforms are: production unless set (e.g. to local fakes). */
const PLATFORMS = Object.fromEntries(
  ["META_API_BASE", "TIKTOK_API_BASE", "APPLE_ADSERVICES_URL"].flatMap((name) =>
    process.env[name] ? [[name, process.env[name] as string]] : [],
  ),
);
/**
 * The agent Worker's model provider: the deterministic local one unless CONTENT_PROVIDER names another,
 * with that provider's key (and only that one) taken from the environment.
 */
const AGENT_VARS = Object.fromEntries(
  [
    "CONTENT_PROVIDER",
    { openai: "OPENAI_API_KEY", anthropic: "ANTHROPIC_API_KEY", vertex: "VERTEX_API_KEY" }[
      process.env.CONTENT_PROVIDER ?? ""
    ],
  ].flatMap((name) => (name && process.env[name] ? [[name, process.env[name] as string]] : [])),
);
/** request.cf for every local request: Cloudflare's geo lookup, which is not there offline. */
const LOCAL_CF = { country: "US", region: "California", city: "San Francisco", colo: "SFO" };

async function main() {
  let embedded: EmbeddedPostgres | undefined;
  let ownerUrl = process.env.DATABASE_URL;
  if (!ownerUrl) {
    const dataDir = path.join(DATA_DIR, "pg");
    await mkdir(dataDir, { recursive: true });
    embedded = await startEmbeddedPostgres({ dataDir, port: EMBEDDED_PG_PORT });
    ownerUrl = embedded.url;
    console.log(`• embedded Postgres (PGlite) on 127.0.0.1:${embedded.port}, data in ${dataDir}`);
  } else {
    console.log("• using the Postgres in DATABASE_URL");
  }
  await migrate(ownerUrl);
  // The demo keys are printed in the README: a database anyone else can reach never gets them.
  const seeded = embedded !== undefined || isLocalDatabase(ownerUrl);
  if (seeded) {
    const db = createNodeDb(ownerUrl, 1);
    await seedDemo(db);
    await db.destroy();
  }
  console.log(
    seeded
      ? "• schema applied, demo org/project/keys seeded (local database only)"
      : "• schema applied; DATABASE_URL is not on this machine, so no demo keys were seeded (npm run bootstrap)",
  );

  const target = new URL(ownerUrl);
  const bridge = await startWsBridge(
    { host: target.hostname, port: Number(target.port || 5432) },
    BRIDGE_PORT,
  );
  console.log(`• Neon WebSocket bridge on 127.0.0.1:${bridge.port}`);
  const neonHttp = await startNeonHttp(
    { host: target.hostname, port: Number(target.port || 5432) },
    NEON_HTTP_PORT,
  );
  console.log(`• Neon SQL-over-HTTP stand-in (the API's reads) on 127.0.0.1:${neonHttp.port}`);

  const s3Dir = path.join(DATA_DIR, "s3");
  await mkdir(s3Dir, { recursive: true });
  const s3 = createLocalS3rver({
    address: "127.0.0.1",
    port: S3_PORT,
    silent: true,
    directory: s3Dir,
    configureBuckets: BUCKETS.map((name) => ({ name, configs: [] })),
  });
  await s3.run();
  console.log(
    `• local S3 (s3rver) on 127.0.0.1:${S3_PORT}, buckets ${BUCKETS.join(", ")}, files in ${s3Dir}`,
  );

  const database = {
    ownerUrl,
    wsProxy: `127.0.0.1:${bridge.port}/v1`,
    httpProxy: `127.0.0.1:${neonHttp.port}`,
  };
  const names = Object.keys(WORKERS) as WorkerName[];
  const build = async (): Promise<WorkerOptions[]> => {
    const scripts = await Promise.all(
      names.map((name) => bundleWorker(WORKERS[name].entry, name, "dev-build")),
    );
    const extra: Record<WorkerName, Record<string, string>> = {
      ingest: {},
      consumer: {},
      relay: { ...LOCAL_KEYRING, ...PLATFORMS },
      // Storage configs and webhook endpoints may point at local servers over plain http (dev only;
      // production is https).
      api: {
        ...LOCAL_KEYRING,
        ...PLATFORMS,
        STORAGE_ALLOW_LOCAL_HTTP: "true",
        WEBHOOK_ALLOW_LOCAL_HTTP: "true",
        // Generated media on the local S3 server: content jobs write it, containers are read (signed URLs) and deleted through it.
        ...S3_VARS,
      },
      // The org exporter logs in as its own role (layers_exporter); the API signs export downloads and
      // reads the cold audit archive on the same local S3.
      cron: { ...S3_VARS, EXPORT_DATABASE_URL: roleUrl(ownerUrl, "layers_exporter") },
      "dead-letters": S3_VARS,
      webhooks: { ...LOCAL_KEYRING, WEBHOOK_ALLOW_LOCAL_HTTP: "true" },
      agent: AGENT_VARS,
      // Content jobs: the Workflow and the in-memory path; partners' buckets may be local servers.
      content: { ...S3_VARS, ...LOCAL_KEYRING, STORAGE_ALLOW_LOCAL_HTTP: "true" },
    };
    return names.map((name, i) => workerOptions(name, scripts[i] as string, database, extra[name]));
  };
  const options = (workers: WorkerOptions[]) => ({
    workers,
    cf: LOCAL_CF,
    // Durable Object state (the API's rate limits) survives a restart, as in production.
    defaultPersistRoot: path.join(DATA_DIR, "miniflare"),
  });
  const mf = new Miniflare(options(await build()));
  await mf.ready;
  console.log(`• ${names.length} Workers running in workerd (Miniflare): ${names.join(", ")}`);

  const cron = async (at = new Date(), expression = "*/5 * * * *") => {
    const worker = await mf.getWorker("cron");
    return worker.scheduled({ scheduledTime: at, cron: expression });
  };
  const servers = [
    // Ingest is the entry Worker: dispatchFetch gives its requests the local request.cf (geo).
    await frontDoor(
      PORT,
      (url, init) => mf.dispatchFetch(url, init as never) as unknown as Promise<Response>,
    ),
    await frontDoor(API_PORT, async (url, init) => {
      const api = await mf.getWorker("api");
      return api.fetch(url, init as never) as unknown as Promise<Response>;
    }),
    await listen(CRON_PORT, async (req, res) => {
      // The same paths wrangler dev answers for a scheduled run.
      const url = new URL(req.url ?? "/", `http://127.0.0.1:${CRON_PORT}`);
      if (url.pathname !== "/__scheduled" && url.pathname !== "/cdn-cgi/handler/scheduled") {
        res.writeHead(404).end("Cron: GET /__scheduled?cron=*/5+*+*+*+* runs the jobs once\n");
        return;
      }
      const result = await cron();
      res.writeHead(result.outcome === "ok" ? 200 : 500, { "Content-Type": "text/plain" });
      res.end(`Ran the Cron jobs: ${result.outcome} (the log above shows each job's counts)\n`);
    }),
  ];
  // The example page needs a key that works: the demo's, seeded only into a local database.
  if (seeded) {
    servers.push(
      await startExampleSite({
        port: EXAMPLE_PORT,
        ingestOrigin: `http://127.0.0.1:${PORT}`,
        sdkKey: DEMO.sdkKey,
      }),
    );
  }
  const interval =
    CRON_MINUTES > 0 ? setInterval(() => void cron().catch(() => {}), CRON_MINUTES * 60_000) : undefined;
  // The every-minute trigger: the webhook outbox and due retries (workers/cron/wrangler.toml).
  const webhookInterval = setInterval(() => void cron(new Date(), "* * * * *").catch(() => {}), 60_000);

  // Rebuild and reload on a change to the code (the queues and Durable Objects restart with them).
  let reloading: NodeJS.Timeout | undefined;
  const watchers = ["workers", "functions", "shared"].map((dir) =>
    watch(path.join(ROOT, dir), { recursive: true }, () => {
      clearTimeout(reloading);
      reloading = setTimeout(async () => {
        try {
          await mf.setOptions(options(await build()));
          console.log("• code changed: Workers rebuilt and reloaded");
        } catch (error) {
          console.error("• rebuild failed (the Workers keep running the last build):", error);
        }
      }, 300);
    }),
  );

  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    console.log("\n• stopping…");
    clearInterval(interval);
    clearInterval(webhookInterval);
    for (const w of watchers) w.close();
    await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
    await mf.dispose();
    await s3.close();
    await bridge.close();
    await neonHttp.close();
    await embedded?.stop();
    process.exit(0);
  };
  process.on("SIGINT", () => void stop());
  process.on("SIGTERM", () => void stop());

  const ingestUrl = `http://127.0.0.1:${PORT}/l/events`;
  const apiUrl = `http://127.0.0.1:${API_PORT}`;
  const cronUrl = `http://127.0.0.1:${CRON_PORT}/__scheduled?cron=*/5+*+*+*+*`;
  const exampleUrl = `http://127.0.0.1:${EXAMPLE_PORT}/example/`;
  const demo = seeded
    ? `
  SDK key    : ${DEMO.sdkKey}   (demo project ${DEMO.projectId}; local only)

Send an event:
  curl -i -X POST ${ingestUrl} \\
    -H 'Authorization: Bearer ${DEMO.sdkKey}' \\
    -H 'Content-Type: application/json' \\
    -d '{"events":[{"eventId":"evt-1","name":"signup","userId":"user-1","email":"Jane@Example.com","properties":{"plan":"pro"}}]}'

SDK example page: ${exampleUrl}   (the <script> bundle with the demo key; its button tracks an event)

Partner API: ${apiUrl}   (docs: ${apiUrl}/docs)
  API key    : ${DEMO.apiKey}   (demo owner key; local only)
  curl -s ${apiUrl}/v1/projects -H 'Authorization: Bearer ${DEMO.apiKey}'
`
    : `
Partner API: ${apiUrl}   (docs: ${apiUrl}/docs)
  Create the first org and owner key with: npm run bootstrap -- "Acme Inc"
`;
  console.log(`
Layers is running.
  ingest URL : ${ingestUrl}${demo}
Cron (retention, deletion requests, audit archive, dead letters): every ${CRON_MINUTES || "—"} minutes, and once per
  curl -s '${cronUrl}'
  (the log shows each job's counts; archives and dead letters land in ${s3Dir})

On a fresh install without the demo, create the first org and owner key with:
  npm run bootstrap -- "Acme Inc"

Ctrl-C stops everything.`);
}

/** An HTTP port whose requests go to one Worker, bodies streamed both ways. */
function frontDoor(
  port: number,
  fetch: (url: string, init: RequestInit) => Promise<Response>,
): Promise<Server> {
  return listen(port, async (req, res) => {
    const url = `http://127.0.0.1:${port}${req.url ?? "/"}`;
    const headers = new Headers();
    for (const [name, value] of Object.entries(req.headers)) {
      if (value !== undefined) headers.set(name, Array.isArray(value) ? value.join(", ") : value);
    }
    const hasBody = req.method !== "GET" && req.method !== "HEAD";
    const response = await fetch(url, {
      method: req.method ?? "GET",
      headers,
      ...(hasBody ? { body: Readable.toWeb(req) as ReadableStream, duplex: "half" } : {}),
    } as RequestInit);
    // Miniflare's own transport headers (mf-*) are not part of the Worker's answer.
    const answer = [...response.headers].filter(([name]) => !name.startsWith("mf-"));
    res.writeHead(response.status, Object.fromEntries(answer));
    if (response.body) Readable.fromWeb(response.body as never).pipe(res);
    else res.end();
  });
}

function listen(
  port: number,
  handle: (req: IncomingMessage, res: ServerResponse) => Promise<void>,
): Promise<Server> {
  const server = createServer((req, res) => {
    handle(req, res).catch((error) => {
      console.error(error);
      if (!res.headersSent) res.writeHead(502).end("local dev: the Worker did not answer\n");
      else res.destroy();
    });
  });
  return new Promise((resolve) => server.listen(port, "127.0.0.1", () => resolve(server)));
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
