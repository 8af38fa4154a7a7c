import { Miniflare, type WorkerOptions } from "miniflare";
import { sealJobRequest } from "../../functions/content/jobs/request";
import { buildPrompt } from "../../functions/content/prompt";
import { createLocalProvider } from "../../functions/content/providers/local";
import { parseKeyring } from "../../functions/destinations/crypto";
import { createS3Store } from "../../functions/storage/objectStore";
import { bundleWorker } from "../../scripts/local/bundle";
import { startNeonHttp } from "../../scripts/local/neon-http";
import { createNodeDb } from "../../scripts/local/node-db";
import { type LocalDatabase, workerOptions } from "../../scripts/local/workers";
import { startWsBridge } from "../../scripts/local/ws-bridge";
import { withTenant } from "../../shared/db";
import { newId } from "../../shared/ids";
import { startLocalS3 } from "../support/s3";
import { createTenant } from "../support/tenant";
import type { Resources } from "./resources";

export interface ContentBenchOptions {
  ownerUrl: string;
  /** Jobs per side and round. */
  jobs: number;
  rounds: number;
  /** Jobs in flight on the direct side (the Workflow side starts every job at once). */
  concurrency: number;
}

export interface ContentFigures {
  workflow: { jobs: number; elapsedMs: number; perSecond: number };
  direct: { jobs: number; elapsedMs: number; perSecond: number };
  ratio: number;
}

export const CONTENT_TARGET = 0.5;

const BENCH_KEYRING = {
  DESTINATION_KEYS: JSON.stringify({ bench: "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=" }),
  DESTINATION_KEY_ID: "bench",
};

const STARTER = `export default { async fetch(request, env) {
  const refs = await request.json();
  for (const ref of refs) await env.CONTENT_JOBS.create({ id: ref.jobId, params: ref });
  return new Response("started");
} }`;

/**
 * (k) Content jobs: jobs per second through the content Worker's Workflow in workerd (validate and build
 * the prompt → generate through the agent Worker with the local provider, straight into s3rver → record in
 * Postgres → notify; four durable steps, a tenant transaction in three), against the same jobs done in a
 * plain Node loop: the local provider called directly and the object put into the same bucket. Image jobs
 * (a 512×512 PNG each). Rounds alternate sides.
 */
export async function benchContent(
  resources: Resources,
  options: ContentBenchOptions,
): Promise<ContentFigures> {
  const s3 = await startLocalS3();
  resources.add("s3 (content)", () => s3.dispose());
  const ownerDb = createNodeDb(options.ownerUrl, 2);
  resources.add("owner db (content)", () => ownerDb.destroy());
  const tenant = await createTenant(ownerDb);
  const target = new URL(options.ownerUrl);
  const pg = { host: target.hostname, port: Number(target.port || 5432) };
  const bridge = await startWsBridge(pg);
  resources.add("ws bridge (content)", () => bridge.close());
  const neonHttp = await startNeonHttp(pg);
  resources.add("neon http (content)", () => neonHttp.close());
  const database: LocalDatabase = {
    ownerUrl: options.ownerUrl,
    wsProxy: `127.0.0.1:${bridge.port}/v1`,
    httpProxy: `127.0.0.1:${neonHttp.port}`,
  };
  const content = workerOptions(
    "content",
    await bundleWorker("workers/content/index.ts", "bench-content"),
    database,
    {
      ...s3.vars,
      ...BENCH_KEYRING,
    },
  );
  const agent = workerOptions("agent", await bundleWorker("workers/agent/index.ts", "bench-agent"), database);
  const starter: WorkerOptions = {
    name: "starter",
    modules: true,
    script: STARTER,
    compatibilityDate: "2026-04-20",
    workflows: {
      CONTENT_JOBS: { name: "layers-content-job", className: "ContentJobWorkflow", scriptName: "content" },
    },
  };
  const mf = new Miniflare({
    workers: [starter, content, agent],
    handleStructuredLogs: () => {},
    structuredWorkerdLogs: true,
  });
  resources.add("miniflare (content)", () => mf.dispose());
  await mf.ready;
  const start = await mf.getWorker("starter");
  const keyring = parseKeyring(BENCH_KEYRING);
  const media = createS3Store({
    endpoint: s3.endpoint,
    bucket: "layers-media",
    region: "us-east-1",
    accessKeyId: "S3RVER",
    secretAccessKey: "S3RVER",
  });
  const provider = createLocalProvider();
  const brief = (i: number) => ({ text: `Bench image ${i}: a red sneaker on a mountain at dawn` });

  /** `n` queued jobs with sealed requests (setup, not measured). */
  async function queued(n: number, offset: number) {
    const refs: { jobId: string; orgId: string; projectId: string }[] = [];
    await withTenant(ownerDb, tenant.orgId, async (tx) => {
      for (let i = 0; i < n; i += 1) {
        const jobId = newId("cjob");
        const sealed = await sealJobRequest(
          keyring,
          { kind: "image", brief: brief(offset + i) },
          { orgId: tenant.orgId, jobId },
        );
        await tx
          .insertInto("content_jobs")
          .values({
            id: jobId,
            org_id: tenant.orgId,
            project_id: tenant.projectId,
            kind: "image",
            status: "queued",
            storage_mode: "cloud",
            async: true,
            request_ciphertext: sealed.ciphertext,
            request_key_id: sealed.keyId,
          })
          .execute();
        refs.push({ jobId, orgId: tenant.orgId, projectId: tenant.projectId });
      }
    });
    return refs;
  }

  const total = { workflow: { n: 0, ms: 0 }, direct: { n: 0, ms: 0 } };
  let offset = 0;
  for (let round = 0; round < options.rounds; round++) {
    for (const side of round % 2 === 0
      ? (["workflow", "direct"] as const)
      : (["direct", "workflow"] as const)) {
      offset += options.jobs;
      if (side === "workflow") {
        const refs = await queued(options.jobs, offset);
        const ids = refs.map((r) => r.jobId);
        const started = performance.now();
        const answer = await start.fetch("http://starter/", { method: "POST", body: JSON.stringify(refs) });
        if (!answer.ok) throw new Error(`content starter answered ${answer.status}`);
        await answer.text();
        for (;;) {
          const rows = await ownerDb
            .selectFrom("content_jobs")
            .select(["status", "error_code"])
            .where("id", "in", ids)
            .where("status", "in", ["succeeded", "failed"])
            .execute();
          const failed = rows.find((r) => r.status === "failed");
          if (failed) throw new Error(`a bench content job failed: ${failed.error_code}`);
          if (rows.length === ids.length) break;
          await new Promise((resolve) => setTimeout(resolve, 10));
        }
        total.workflow.ms += performance.now() - started;
        total.workflow.n += ids.length;
      } else {
        const started = performance.now();
        let next = 0;
        await Promise.all(
          Array.from({ length: options.concurrency }, async () => {
            while (next < options.jobs) {
              const i = next++;
              const prompt = buildPrompt({
                projectId: tenant.projectId,
                kind: "image",
                brief: brief(offset + i),
              });
              const out = await provider.generate(prompt);
              await media.put(`bench/${tenant.orgId}/${offset + i}`, out.media, out.mediaType);
            }
          }),
        );
        total.direct.ms += performance.now() - started;
        total.direct.n += options.jobs;
      }
    }
  }
  const rate = (s: { n: number; ms: number }) => (s.n / s.ms) * 1000;
  return {
    workflow: { jobs: total.workflow.n, elapsedMs: total.workflow.ms, perSecond: rate(total.workflow) },
    direct: { jobs: total.direct.n, elapsedMs: total.direct.ms, perSecond: rate(total.direct) },
    ratio: rate(total.workflow) / rate(total.direct),
  };
}

export function contentLines(f: ContentFigures, options: ContentBenchOptions): string {
  const num = (n: number) => n.toFixed(1);
  const pass = f.ratio >= CONTENT_TARGET ? "PASS" : "MISS";
  return [
    `(k) content image jobs, local provider: Workflow (4 durable steps, agent Worker, s3rver, Postgres) ` +
      `${num(f.workflow.perSecond)} jobs/s | provider + put loop (${options.concurrency} in flight) ` +
      `${num(f.direct.perSecond)}/s | ratio ${f.ratio.toFixed(2)} (target ≥ ${CONTENT_TARGET}) ${pass}`,
    `    ${f.workflow.jobs} jobs per side over ${options.rounds} alternating rounds (the Workflow side: every job ` +
      "started at once, done when its row is succeeded; the loop side: generate and store only)",
  ].join("\n");
}
