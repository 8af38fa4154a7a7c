import { mkdir, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { sql } from "kysely";
import type { TestProject } from "vitest/node";
import { bundleWorker, ROOT } from "../../scripts/local/bundle";
import { type EmbeddedPostgres, startEmbeddedPostgres } from "../../scripts/local/embedded-postgres";
import { migrate } from "../../scripts/local/migrate";
import { createNodeDb } from "../../scripts/local/node-db";
import { issuedSecretsInTables } from "./issuedSecrets";
import { TEST_WORKERS } from "./testWorkers";

declare module "vitest" {
  export interface ProvidedContext {
    /** One database per vitest worker (test/support/database.ts picks a file's). */
    ownerUrls: string[];
    ingestScript: string;
    consumerScript: string;
    apiScript: string;
    cronScript: string;
    relayScript: string;
    deadLettersScript: string;
    webhooksScript: string;
    agentScript: string;
    contentScript: string;
    issuedSecretsFile: string;
  }
}

/**
 * Once per `npm test`: a database (the server in TEST_DATABASE_URL, as in CI, else embedded PGlite in
 * memory), the migrations applied to it, and the Workers bundled.
 */
export default async function setup(project: TestProject) {
  let embedded: EmbeddedPostgres | undefined;
  let ownerUrls: string[];
  const serverUrl = process.env.TEST_DATABASE_URL;
  if (serverUrl) {
    ownerUrls = await workerDatabases(serverUrl, TEST_WORKERS);
  } else {
    embedded = await startEmbeddedPostgres();
    ownerUrls = [embedded.url];
  }
  for (const url of ownerUrls) await migrate(url);
  project.provide("ownerUrls", ownerUrls);
  project.provide("ingestScript", await bundleWorker("workers/ingest/index.ts", "ingest"));
  project.provide("consumerScript", await bundleWorker("workers/consumer/index.ts", "consumer"));
  project.provide("apiScript", await bundleWorker("workers/api/index.ts", "api"));
  project.provide("cronScript", await bundleWorker("workers/cron/index.ts", "cron"));
  project.provide("relayScript", await bundleWorker("workers/relay/index.ts", "relay"));
  project.provide("deadLettersScript", await bundleWorker("workers/dead-letters/index.ts", "dead-letters"));
  project.provide("webhooksScript", await bundleWorker("workers/webhooks/index.ts", "webhooks"));
  project.provide("agentScript", await bundleWorker("workers/agent/index.ts", "agent"));
  project.provide("contentScript", await bundleWorker("workers/content/index.ts", "content"));
  const buildDir = path.join(ROOT, ".wrangler", "test-build", String(process.pid));
  await mkdir(buildDir, { recursive: true });
  const issuedSecretsFile = path.join(buildDir, "issued-secrets.ndjson");
  await writeFile(issuedSecretsFile, "");
  project.provide("issuedSecretsFile", issuedSecretsFile);
  return async () => {
    // Every secret any test was issued, searched for in every table the run left behind, in every database.
    const leaks: string[] = [];
    try {
      for (const url of ownerUrls) {
        const db = createNodeDb(url, 1);
        try {
          leaks.push(...(await issuedSecretsInTables(db, issuedSecretsFile)));
        } finally {
          await db.destroy();
        }
      }
    } finally {
      await rm(buildDir, { recursive: true, force: true });
      if (serverUrl) await dropWorkerDatabases(serverUrl, ownerUrls);
      await embedded?.stop();
    }
    if (leaks.length > 0) {
      // vitest reports an error thrown here but still exits 0: the exit code is set as well.
      process.exitCode = 1;
      throw new Error(`secrets issued to the tests are stored: ${leaks.join(", ")}`);
    }
  };
}

/**
 * The databases the workers use: TEST_DATABASE_URL's own for the first, and for each other worker one
 * created next to it (`<name>_w2`…), dropped at the end of the run. The server's roles are shared; every
 * database gets the migrations.
 */
async function workerDatabases(serverUrl: string, workers: number): Promise<string[]> {
  const urls = [serverUrl];
  const admin = createNodeDb(serverUrl, 1);
  try {
    for (let worker = 2; worker <= workers; worker++) {
      const url = new URL(serverUrl);
      const name = `${url.pathname.slice(1)}_w${worker}`;
      url.pathname = `/${name}`;
      // Left over from a run that was killed before its teardown.
      await sql`drop database if exists ${sql.id(name)} with (force)`.execute(admin);
      await sql`create database ${sql.id(name)}`.execute(admin);
      urls.push(url.toString());
    }
  } finally {
    await admin.destroy();
  }
  return urls;
}

async function dropWorkerDatabases(serverUrl: string, urls: string[]): Promise<void> {
  const admin = createNodeDb(serverUrl, 1);
  try {
    for (const url of urls.slice(1)) {
      await sql`drop database if exists ${sql.id(new URL(url).pathname.slice(1))} with (force)`.execute(
        admin,
      );
    }
  } finally {
    await admin.destroy();
  }
}
