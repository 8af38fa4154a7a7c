import { readFile } from "node:fs/promises";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { unstable_getMiniflareWorkerOptions } from "wrangler";
import type { z } from "zod";
import { cronVarsSchema } from "../../functions/cron/vars";
import { ROOT } from "../../scripts/local/bundle";
import { WORKERS, type WorkerName } from "../../scripts/local/workers";
import { AGENT_PROVIDER_KEY_VARS, agentVarsSchema } from "../../workers/agent/env";
import { apiVarsSchema, contentJobVarsSchema, destinationVarsSchema } from "../../workers/api/env";
import { consumerVarsSchema } from "../../workers/consumer/env";
import { contentVarsSchema } from "../../workers/content/env";
import { deadLetterVarsSchema } from "../../workers/dead-letters/env";
import { ingestVarsSchema } from "../../workers/ingest/env";
import { relayVarsSchema } from "../../workers/relay/env";
import { webhooksVarsSchema } from "../../workers/webhooks/env";

/** The schemas each Worker validates its env with (workers/<name>/env.ts, functions/cron/vars.ts). */
const SCHEMAS: Record<WorkerName, z.ZodType[]> = {
  ingest: [ingestVarsSchema],
  consumer: [consumerVarsSchema],
  relay: [relayVarsSchema],
  api: [apiVarsSchema, destinationVarsSchema, contentJobVarsSchema],
  cron: [cronVarsSchema],
  "dead-letters": [deadLetterVarsSchema],
  webhooks: [webhooksVarsSchema],
  agent: [agentVarsSchema],
  content: [contentVarsSchema],
};

/** Stand-ins of the right shape for the secrets each .dev.vars.example declares. */
const SECRET_SHAPES: Record<string, string> = {
  DATABASE_URL: "postgres://role:password@db.example.invalid/layers",
  DESTINATION_KEYS: '{"k1":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}',
  DESTINATION_KEY_ID: "k1",
  S3_ENDPOINT: "https://account.r2.cloudflarestorage.com",
  S3_ACCESS_KEY_ID: "access-key-id",
  S3_SECRET_ACCESS_KEY: "secret-access-key",
  OPENAI_API_KEY: "sk-proj-stand-in",
  ANTHROPIC_API_KEY: "sk-ant-stand-in",
  VERTEX_API_KEY: "AIza-stand-in",
};

async function declaredSecrets(config: string): Promise<string[]> {
  const file = path.join(ROOT, path.dirname(config), ".dev.vars.example");
  const text = await readFile(file, "utf8");
  return text
    .split("\n")
    .map((line) => /^([A-Z][A-Z0-9_]*)=/.exec(line)?.[1])
    .filter((name): name is string => name !== undefined);
}

// A var out of its schema's bounds would otherwise surface only on a deployed Worker's first invocation.
describe("each Worker's wrangler config passes its own env schema", () => {
  for (const name of Object.keys(WORKERS) as WorkerName[]) {
    it(name, async () => {
      const { config } = WORKERS[name];
      const vars = unstable_getMiniflareWorkerOptions(path.join(ROOT, config)).workerOptions.bindings ?? {};
      let secrets = await declaredSecrets(config);
      if (name === "agent") {
        // The agent has no database, and holds only the key of the provider its config chooses.
        expect(secrets).not.toContain("DATABASE_URL");
        const provider = (vars as Record<string, string>)
          .CONTENT_PROVIDER as keyof typeof AGENT_PROVIDER_KEY_VARS;
        secrets = secrets.filter((secret) => secret === AGENT_PROVIDER_KEY_VARS[provider]);
      } else {
        expect(secrets).toContain("DATABASE_URL");
      }
      const env: Record<string, unknown> = { ...vars };
      for (const secret of secrets) {
        expect(SECRET_SHAPES, `a stand-in for ${secret}`).toHaveProperty(secret);
        env[secret] = SECRET_SHAPES[secret];
      }
      for (const schema of SCHEMAS[name]) {
        const result = schema.safeParse(env);
        expect(result.error?.issues ?? []).toEqual([]);
      }
    });
  }
});
