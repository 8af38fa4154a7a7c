// npm run bench: speed figures for the four hot paths, each as a ratio against a baseline measured in
// the same run on the same machine (a shared, noisy machine makes absolute numbers meaningless):
//  (a) ingest Worker in workerd vs a bare 202 Worker, (b) persistEvents vs COPY, (c) handler CPU per batch,
//  (d) partner API Worker in workerd (GET and POST /v1/projects) vs a bare Hono route; (i) the client SDK's
// bundle size and track() cost, as measured values.
// Prints figures, targets and PASS/MISS; exits 0 when targets are missed, non-zero only on errors.
import { createNodeDb } from "../../scripts/local/node-db";
import { createTenant } from "../support/tenant";
import { benchApi } from "./api";
import { benchContent, contentLines } from "./content";
import { benchCpu } from "./cpu";
import { openBenchDatabase } from "./db";
import { benchDeleteUser, deleteUserLines } from "./deleteUser";
import { benchEndToEnd, endToEndLines } from "./endToEnd";
import { benchIngest } from "./ingest";
import { benchOrgDelete, orgDeleteLines } from "./orgDelete";
import { benchPersist } from "./persist";
import { benchPurge, purgeLines } from "./purge";
import { benchRelay, relayLines } from "./relay";
import * as report from "./report";
import { Resources } from "./resources";
import { benchSdk, sdkLines } from "./sdk";
import { benchWebhooks, webhooksLines } from "./webhooks";
import { benchIngestCpuInWorkerd, bundleSizes, ingestStartup } from "./workerd";

function intFromEnv(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === "") return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value <= 0)
    throw new Error(`${name} must be a positive integer, got "${raw}"`);
  return value;
}

/** BENCH_ONLY=ingest,persist,cpu,api,purge,relay,dsar,e2e,sdk,webhooks,content,orgDelete (any subset) runs only those parts; all by default. */
function partsFromEnv(): Set<string> {
  const all = [
    "ingest",
    "persist",
    "cpu",
    "api",
    "purge",
    "relay",
    "dsar",
    "e2e",
    "sdk",
    "webhooks",
    "content",
    "orgDelete",
  ];
  const wanted = (process.env.BENCH_ONLY ?? all.join(",")).split(",").map((p) => p.trim());
  const unknown = wanted.filter((p) => !all.includes(p));
  if (unknown.length > 0)
    throw new Error(`BENCH_ONLY: unknown part(s) ${unknown.join(", ")}; use ${all.join(",")}`);
  return new Set(wanted);
}

/** Progress goes to stderr, so stdout is exactly the report. */
const progress = (message: string) => process.stderr.write(`… ${message}\n`);

async function main(resources: Resources): Promise<void> {
  const settings: report.BenchSettings = {
    database: "",
    batchSize: 50,
    concurrency: intFromEnv("BENCH_CONCURRENCY", 16),
    ingestSeconds: intFromEnv("BENCH_INGEST_SECONDS", 12),
    rows: intFromEnv("BENCH_ROWS", 100_000),
    eventsPerMessage: 150,
    persistConcurrency: 4,
    cpuRequests: intFromEnv("BENCH_CPU_REQUESTS", 2_000),
    apiSeconds: intFromEnv("BENCH_API_SECONDS", 8),
  };

  const parts = partsFromEnv();
  // The SDK part needs no database: alone, it runs without preparing one.
  if (parts.size === 1 && parts.has("sdk")) {
    await sdkPart();
    return;
  }
  progress("preparing a database");
  const database = await openBenchDatabase();
  resources.add("bench database", () => database.close());
  settings.database = database.label;
  const setupDb = createNodeDb(database.ownerUrl, 1);
  const tenant = await createTenant(setupDb);
  await setupDb.destroy();
  console.log(report.header(settings));

  if (parts.has("ingest")) await ingestPart(resources, settings, database.ownerUrl, tenant.sdkKey);
  if (parts.has("persist")) {
    // PGlite's socket server does not speak COPY FROM STDIN, so there is no baseline to compare with.
    if (database.embedded) console.log(report.persistSkipped());
    else await persistPart(resources, settings, database.ownerUrl);
  }
  if (parts.has("cpu")) await cpuPart(resources, settings, database.ownerUrl, tenant.sdkKey);
  if (parts.has("api")) await apiPart(resources, settings, database.ownerUrl);
  if (parts.has("purge")) {
    // 500k rows per side is minutes of inserts on PGlite; its figures would say nothing about a server.
    if (database.embedded)
      console.log("(e) purge   skipped: embedded PGlite (run against a Postgres server)");
    else await purgePart(resources, database.ownerUrl, intFromEnv("BENCH_PURGE_ROWS", 500_000));
  }

  if (parts.has("relay")) {
    const relayOptions = {
      ownerUrl: database.ownerUrl,
      events: intFromEnv("BENCH_RELAY_EVENTS", 20_000),
      eventsPerBatch: 200, // ~80 KB per message, within the queue's 128 KB
      rounds: 2,
    };
    progress(`(f) relay: ${relayOptions.events} events per side, relay queue → Worker vs pre-built batches`);
    console.log(relayLines(await benchRelay(resources, relayOptions), relayOptions));
  }

  if (parts.has("dsar")) {
    // 2M rows are many minutes of inserts on PGlite; its figures would say nothing about a server.
    if (database.embedded)
      console.log("(g) dsar    skipped: embedded PGlite (run against a Postgres server)");
    else {
      const dsarOptions = {
        ownerUrl: database.ownerUrl,
        tableRows: intFromEnv("BENCH_DSAR_TABLE_ROWS", 2_000_000),
        userEvents: intFromEnv("BENCH_DSAR_USER_EVENTS", 10_000),
        slaEvents: intFromEnv("BENCH_DSAR_SLA_EVENTS", 100_000),
      };
      progress(`(g) dsar: delete one user of ${dsarOptions.userEvents} events from ${dsarOptions.tableRows}`);
      console.log(deleteUserLines(await benchDeleteUser(resources, dsarOptions, progress), dsarOptions));
    }
  }

  if (parts.has("e2e")) {
    const e2eOptions = {
      ownerUrl: database.ownerUrl,
      batchSize: settings.batchSize,
      concurrency: settings.concurrency,
      seconds: intFromEnv("BENCH_E2E_SECONDS", 10),
      bodies: intFromEnv("BENCH_E2E_BODIES", 6_000),
    };
    progress(`(h) e2e: ingest → queue → consumer → Postgres for ${e2eOptions.seconds} s`);
    console.log(endToEndLines(await benchEndToEnd(resources, e2eOptions), e2eOptions));
  }

  if (parts.has("webhooks")) {
    const webhooksOptions = {
      ownerUrl: database.ownerUrl,
      deliveries: intFromEnv("BENCH_WEBHOOK_DELIVERIES", 2_000),
      rounds: 2,
    };
    progress(
      `(j) webhooks: ${webhooksOptions.deliveries} deliveries per side, queue → Worker vs a signed fetch loop`,
    );
    console.log(webhooksLines(await benchWebhooks(resources, webhooksOptions), webhooksOptions));
  }

  if (parts.has("content")) {
    const contentOptions = {
      ownerUrl: database.ownerUrl,
      jobs: intFromEnv("BENCH_CONTENT_JOBS", 40),
      rounds: 2,
      concurrency: 8,
    };
    progress(`(k) content: ${contentOptions.jobs} image jobs per side, Workflow vs provider + put loop`);
    console.log(contentLines(await benchContent(resources, contentOptions), contentOptions));
  }
  if (parts.has("orgDelete")) {
    // 4M rows of inserts on PGlite would take long and say nothing about a server.
    if (database.embedded)
      console.log("(l) org delete skipped: embedded PGlite (run against a Postgres server)");
    else {
      const orgDeleteOptions = {
        ownerUrl: database.ownerUrl,
        events: intFromEnv("BENCH_ORG_DELETE_EVENTS", 2_000_000),
        objects: intFromEnv("BENCH_ORG_DELETE_OBJECTS", 10_000),
      };
      progress(
        `(l) org delete: ${orgDeleteOptions.events} events + ${orgDeleteOptions.objects} objects per org, cascade vs plain`,
      );
      console.log(
        orgDeleteLines(await benchOrgDelete(resources, orgDeleteOptions, progress), orgDeleteOptions),
      );
    }
  }

  if (parts.has("sdk")) await sdkPart();

  console.log("");
  console.log(report.reproduce(settings));
}

async function sdkPart() {
  progress("(i) sdk: browser bundle size, track() cost");
  console.log(sdkLines(await benchSdk()));
}

async function ingestPart(
  resources: Resources,
  settings: report.BenchSettings,
  ownerUrl: string,
  sdkKey: string,
) {
  progress(
    `(a) ingest: bare, layers and yardstick Workers, ${settings.ingestSeconds} s each in 4 rotating rounds`,
  );
  const ingest = await benchIngest(resources, {
    ownerUrl,
    sdkKey,
    batchSize: settings.batchSize,
    concurrency: settings.concurrency,
    seconds: settings.ingestSeconds,
    rounds: 4,
  });
  if (ingest.delivered.events === 0)
    throw new Error("ingest answered 202 but no event reached the queue consumer");
  console.log(report.ingestLine(ingest, settings));
  console.log(report.ingestNote(ingest));
}

async function persistPart(resources: Resources, settings: report.BenchSettings, ownerUrl: string) {
  progress(
    `(b) persist: COPY vs the consumer (and one statement per message), ${settings.rows} rows each in 4 rotating rounds`,
  );
  const persist = await benchPersist(resources, {
    ownerUrl,
    rows: settings.rows,
    eventsPerMessage: settings.eventsPerMessage,
    concurrency: settings.persistConcurrency,
    rounds: 4,
    queueBatch: 100, // workers/consumer/wrangler.toml max_batch_size
  });
  console.log(report.persistLine(persist, settings));
  console.log(report.persistNote(persist));
}

async function cpuPart(
  resources: Resources,
  settings: report.BenchSettings,
  ownerUrl: string,
  sdkKey: string,
) {
  progress(`(c) ingest handler CPU over ${settings.cpuRequests} requests`);
  const cpu = await benchCpu(resources, {
    ownerUrl,
    sdkKey,
    batchSize: settings.batchSize,
    requests: settings.cpuRequests,
  });
  progress("(c) ingest handler CPU inside workerd, bundle sizes, ingest startup");
  const inWorkerd = await benchIngestCpuInWorkerd(resources, {
    ownerUrl,
    sdkKey,
    batchSize: settings.batchSize,
    batches: settings.cpuRequests,
  });
  console.log(report.cpuLine(cpu, inWorkerd, settings));
  console.log(report.cpuNote(cpu, inWorkerd));
  console.log(report.bundleLines(await bundleSizes(), await ingestStartup(5)));
}

async function apiPart(resources: Resources, settings: report.BenchSettings, ownerUrl: string) {
  progress(
    `(d) api: GET and POST /v1/projects, API Worker and bare Hono, ${settings.apiSeconds} s each in 4 rotating rounds`,
  );
  const api = await benchApi(resources, {
    ownerUrl,
    concurrency: settings.concurrency,
    seconds: settings.apiSeconds,
    rounds: 4,
    pooler: process.env.BENCH_API_POOLER === "direct" ? "direct" : "pgbouncer",
    // BENCH_API_PROFILE=<file.cpuprofile> [BENCH_API_PROFILE_SIDE=api-get|api-post|…]: a CPU profile of the API Worker.
    profile: process.env.BENCH_API_PROFILE
      ? { file: process.env.BENCH_API_PROFILE, side: process.env.BENCH_API_PROFILE_SIDE ?? "api-get" }
      : undefined,
  });
  if (api.created.projects !== api.created.expected) {
    throw new Error(
      `api: ${api.created.expected} POSTs answered 201 but the org holds ${api.created.projects} projects`,
    );
  }
  console.log(report.apiLine(api, settings));
  console.log(report.apiNote(api));
}

async function purgePart(resources: Resources, ownerUrl: string, rows: number) {
  progress(
    `(e) purge: ${rows} expired events with purgeExpired vs one plain DELETE, with concurrent inserts`,
  );
  console.log(purgeLines(await benchPurge(resources, { ownerUrl, rows })));
}

const resources = new Resources();
let interrupted = false;
const onSignal = (signal: NodeJS.Signals) => {
  // tsx relays the terminal's signal to this process a second time when we are slow to answer: repeats
  // are ignored while cleaning up, and a watchdog makes sure a stuck cleanup cannot keep us alive.
  if (interrupted) return;
  interrupted = true;
  progress(`${signal}: cleaning up`);
  setTimeout(() => process.exit(130), 20_000).unref();
  void resources.closeAll().finally(() => process.exit(130));
};
// A client library's unhandled 'error' event must not leave the bench database behind either.
process.on("uncaughtException", (error) => {
  console.error("bench failed:", error);
  void resources.closeAll().finally(() => process.exit(1));
});
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  // Importing wrangler installs handlers that call process.exit() (with code 0) at once, which would
  // leave the bench database behind; ours cleans up first.
  process.removeAllListeners(signal);
  process.on(signal, onSignal);
}

let code = 0;
try {
  await main(resources);
} catch (error) {
  // After Ctrl-C the failures are only the interruption itself (workerd got the signal too).
  if (!interrupted) console.error("bench failed:", error);
  code = interrupted ? 130 : 1;
}
if (!(await resources.closeAll())) code = 1;
// Everything is closed above; exiting explicitly also ends stray timers of third-party clients.
process.exit(code);
