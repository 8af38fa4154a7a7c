import { mkdir, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import type { TestProject } from "vitest/node";
import { bundleWorker, ROOT } from "../../scripts/local/bundle";
import { type EmbeddedPostgres, startEmbeddedPostgres } from "../../scripts/local/embedded-postgres";
import { migrate } from "../../scripts/local/migrate";
import { createNodeDb } from "../../scripts/local/node-db";
import { issuedSecretsInTables } from "./issuedSecrets";

declare module "vitest" {
  export interface ProvidedContext {
    ownerUrl: string;
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
  let ownerUrl = process.env.TEST_DATABASE_URL;
  if (!ownerUrl) {
    embedded = await startEmbeddedPostgres();
    ownerUrl = embedded.url;
  }
  await migrate(ownerUrl);
  project.provide("ownerUrl", ownerUrl);
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
    // Every secret any test was issued, searched for in every table the run left behind.
    const db = createNodeDb(ownerUrl, 1);
    let leaks: string[];
    try {
      leaks = await issuedSecretsInTables(db, issuedSecretsFile);
    } finally {
      await db.destroy();
      await rm(buildDir, { recursive: true, force: true });
      await embedded?.stop();
    }
    if (leaks.length > 0) {
      // vitest reports an error thrown here but still exits 0: the exit code is set as well.
      process.exitCode = 1;
      throw new Error(`secrets issued to the tests are stored: ${leaks.join(", ")}`);
    }
  };
}
