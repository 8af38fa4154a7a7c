// npm run dev: the whole system on one machine, one command.
//  1. Postgres: DATABASE_URL if set, else the embedded PGlite with its data under .data/pg.
//  2. schema.sql applied, the demo org/project/SDK key seeded (idempotent).
//  3. The WebSocket-to-TCP bridge the Neon driver needs to reach a plain Postgres.
//  4. Every Worker in one `wrangler dev`, so they share the local queues.
//  5. A local S3-API server (s3rver) for the cold audit archive, and the Cron Worker with --test-scheduled.
// Ctrl-C stops everything this script started (wrangler by its own pid, then bridge and database).
import { type ChildProcess, spawn } from "node:child_process";
import { mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import S3rver from "s3rver";
import type { DbRole } from "../shared/db";
import { type EmbeddedPostgres, startEmbeddedPostgres } from "./local/embedded-postgres";
import { maintenanceRoleUrl, migrate, roleUrl } from "./local/migrate";
import { createNodeDb } from "./local/node-db";
import { seedDemo } from "./local/seed";
import { startWsBridge } from "./local/ws-bridge";

const ROOT = path.resolve(import.meta.dirname, "..");
const PORT = Number(process.env.PORT ?? 8787);
const BRIDGE_PORT = Number(process.env.BRIDGE_PORT ?? 5433);
const EMBEDDED_PG_PORT = Number(process.env.EMBEDDED_PG_PORT ?? 5440);
const API_PORT = Number(process.env.API_PORT ?? 8788);
// The queue-connected Workers share one wrangler dev (and so its local queues); the API, which uses no
// queue, gets its own port, since wrangler dev serves only the first of several configs.
const WORKER_CONFIGS = ["wrangler.toml", "workers/consumer/wrangler.toml", "workers/relay/wrangler.toml"];
const API_CONFIG = "workers/api/wrangler.toml";
// The Cron Worker runs in its own wrangler dev with --test-scheduled (a run is one curl, printed below);
// its audit archive goes to a local S3-API server (s3rver) with files under .data/s3.
const CRON_CONFIG = "workers/cron/wrangler.toml";
const CRON_PORT = Number(process.env.CRON_PORT ?? 8789);
const S3_PORT = Number(process.env.S3_PORT ?? 4569);
const ARCHIVE_BUCKET = "layers-audit-archive";

async function main() {
  let embedded: EmbeddedPostgres | undefined;
  let ownerUrl = process.env.DATABASE_URL;
  if (!ownerUrl) {
    const dataDir = path.join(ROOT, ".data", "pg");
    await mkdir(dataDir, { recursive: true });
    embedded = await startEmbeddedPostgres({ dataDir, port: EMBEDDED_PG_PORT });
    ownerUrl = embedded.url;
    console.log(`• embedded Postgres (PGlite) on 127.0.0.1:${embedded.port}, data in .data/pg`);
  } else {
    console.log("• using the Postgres in DATABASE_URL");
  }

  await migrate(ownerUrl);
  const db = createNodeDb(ownerUrl, 1);
  const demo = await seedDemo(db);
  await db.destroy();
  console.log("• schema applied, demo org/project/key seeded");

  const target = new URL(ownerUrl);
  const bridge = await startWsBridge(
    { host: target.hostname, port: Number(target.port || 5432) },
    BRIDGE_PORT,
  );
  console.log(`• Neon WebSocket bridge on 127.0.0.1:${bridge.port}`);

  // Secrets for wrangler dev: one .dev.vars beside each Worker's config (git-ignored). Each Worker logs in
  // as its own database role, as in production.
  const roles: Record<string, DbRole> = {
    "wrangler.toml": "layers_ingest",
    "workers/consumer/wrangler.toml": "layers_consumer",
    "workers/relay/wrangler.toml": "layers_relay",
    [API_CONFIG]: "layers_api",
  };
  for (const config of [...WORKER_CONFIGS, API_CONFIG]) {
    const devVars = [
      `DATABASE_URL=${roleUrl(ownerUrl, roles[config] as DbRole)}`,
      `NEON_WS_PROXY=127.0.0.1:${bridge.port}/v1`,
      // Destination-token keyring (API and relay): a fixed local-only key, so tokens saved in .data/pg stay
      // readable across runs. Production keys are Worker secrets (README, "Destination token keys").
      `DESTINATION_KEYS='{"local-dev":"bG9jYWwtZGV2ZWxvcG1lbnQtb25seS1rZXktMDAwMDA="}'`,
      "DESTINATION_KEY_ID=local-dev",
      "",
    ].join("\n");
    await writeFile(path.join(ROOT, path.dirname(config), ".dev.vars"), devVars);
  }

  const s3Dir = path.join(ROOT, ".data", "s3");
  await mkdir(s3Dir, { recursive: true });
  const s3 = new S3rver({
    address: "127.0.0.1",
    port: S3_PORT,
    silent: true,
    directory: s3Dir,
    configureBuckets: [{ name: ARCHIVE_BUCKET, configs: [] }],
  });
  await s3.run();
  console.log(`• local S3 (s3rver) on 127.0.0.1:${S3_PORT}, bucket ${ARCHIVE_BUCKET}, files in .data/s3`);
  // The Cron Worker connects as the maintenance role. The archive settings go on the command line, not in
  // .dev.vars: the test harness reads .dev.vars too, and must not find a dev server's endpoint there.
  await writeFile(
    path.join(ROOT, path.dirname(CRON_CONFIG), ".dev.vars"),
    [
      `DATABASE_URL=${process.env.MAINTENANCE_DATABASE_URL ?? maintenanceRoleUrl(ownerUrl)}`,
      `NEON_WS_PROXY=127.0.0.1:${bridge.port}/v1`,
      "",
    ].join("\n"),
  );
  // s3rver accepts any credentials; these only have to be well-formed for the SDK to sign with.
  const archiveVars = [
    `ARCHIVE_S3_ENDPOINT:http://127.0.0.1:${S3_PORT}`,
    `ARCHIVE_S3_BUCKET:${ARCHIVE_BUCKET}`,
    "ARCHIVE_S3_REGION:us-east-1",
    "ARCHIVE_S3_ACCESS_KEY_ID:S3RVER",
    "ARCHIVE_S3_SECRET_ACCESS_KEY:S3RVER",
  ].flatMap((v) => ["--var", v]);

  const wranglerDev = (configs: string[], port: number, extra: string[] = []): ChildProcess =>
    spawn(
      path.join(ROOT, "node_modules", ".bin", "wrangler"),
      [
        "dev",
        ...configs.flatMap((c) => ["-c", c]),
        "--port",
        String(port),
        "--ip",
        "127.0.0.1",
        "--inspector-port",
        "0",
        ...extra,
      ],
      {
        cwd: ROOT,
        stdio: ["ignore", "inherit", "inherit"],
        env: { ...process.env, WRANGLER_SEND_METRICS: "false" },
      },
    );
  const children = [
    wranglerDev(WORKER_CONFIGS, PORT),
    wranglerDev([API_CONFIG], API_PORT),
    wranglerDev([CRON_CONFIG], CRON_PORT, ["--test-scheduled", ...archiveVars]),
  ];

  let stopping = false;
  const stop = async (code: number) => {
    if (stopping) return;
    stopping = true;
    console.log("\n• stopping…");
    for (const child of children) if (child.exitCode === null) child.kill("SIGTERM");
    await s3.close();
    await bridge.close();
    await embedded?.stop();
    process.exit(code);
  };
  process.on("SIGINT", () => void stop(0));
  process.on("SIGTERM", () => void stop(0));
  for (const child of children) child.on("exit", (code) => void stop(code ?? 0));

  const ingestUrl = `http://127.0.0.1:${PORT}/l/events`;
  const apiUrl = `http://127.0.0.1:${API_PORT}`;
  await waitUntilUp(ingestUrl);
  await waitUntilUp(`${apiUrl}/v1/openapi.json`);
  // Not probed: the Cron Worker has no fetch handler (a probe would log an error); it starts with the others.
  const cronUrl = `http://127.0.0.1:${CRON_PORT}/__scheduled?cron=*/5+*+*+*+*`;
  console.log(`
Layers is running.
  ingest URL : ${ingestUrl}
  SDK key    : ${demo.sdkKey}   (demo project ${demo.projectId}; local only)

Send an event:
  curl -i -X POST ${ingestUrl} \\
    -H 'Authorization: Bearer ${demo.sdkKey}' \\
    -H 'Content-Type: application/json' \\
    -d '{"events":[{"eventId":"evt-1","name":"signup","userId":"user-1","email":"Jane@Example.com","properties":{"plan":"pro"}}]}'

Partner API: ${apiUrl}   (docs: ${apiUrl}/docs)
  API key    : ${demo.apiKey}   (demo owner key; local only)
  curl -s ${apiUrl}/v1/projects -H 'Authorization: Bearer ${demo.apiKey}'

Cron (retention, deletion requests, audit archive): in production every 5 minutes; locally one run per
  curl -s '${cronUrl}'
  (the Worker's log shows each job's counts; archives land in .data/s3/${ARCHIVE_BUCKET}/audit/…)

On a fresh install without the demo, create the first org and owner key with:
  npm run bootstrap -- "Acme Inc"

Ctrl-C stops everything.`);
}

async function waitUntilUp(url: string): Promise<void> {
  for (let i = 0; i < 600; i++) {
    try {
      await fetch(url, { method: "OPTIONS" });
      return;
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }
  throw new Error(`wrangler dev did not answer on ${url}`);
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
