import path from "node:path";
import type { WorkerOptions } from "miniflare";
import { unstable_getMiniflareWorkerOptions } from "wrangler";
import type { DbRole } from "../../shared/db";
import { ROOT } from "./bundle";
import { roleUrl } from "./migrate";

// Every Worker of the system, as `npm run dev` and the tests run them in one Miniflare (so they share the
// local queues, as the deployed Workers share Cloudflare's): its wrangler config, its entry point, and the
// database role it logs in as (none for the agent: it has no database at all).
export const WORKERS = {
  ingest: { config: "wrangler.toml", entry: "workers/ingest/index.ts", role: "layers_ingest" },
  consumer: {
    config: "workers/consumer/wrangler.toml",
    entry: "workers/consumer/index.ts",
    role: "layers_consumer",
  },
  relay: { config: "workers/relay/wrangler.toml", entry: "workers/relay/index.ts", role: "layers_relay" },
  api: { config: "workers/api/wrangler.toml", entry: "workers/api/index.ts", role: "layers_api" },
  cron: { config: "workers/cron/wrangler.toml", entry: "workers/cron/index.ts", role: "layers_maintenance" },
  "dead-letters": {
    config: "workers/dead-letters/wrangler.toml",
    entry: "workers/dead-letters/index.ts",
    role: "layers_relay",
  },
  webhooks: {
    config: "workers/webhooks/wrangler.toml",
    entry: "workers/webhooks/index.ts",
    role: "layers_webhooks",
  },
  agent: { config: "workers/agent/wrangler.toml", entry: "workers/agent/index.ts", role: undefined },
  content: {
    config: "workers/content/wrangler.toml",
    entry: "workers/content/index.ts",
    role: "layers_content",
  },
} as const satisfies Record<string, { config: string; entry: string; role: DbRole | undefined }>;
export type WorkerName = keyof typeof WORKERS;

/**
 * The deployed name (wrangler.toml `name`) of the Workers another one binds to: service bindings and a
 * Workflow's `script_name` name them so, while Miniflare knows every Worker by its local name above.
 */
const DEPLOYED_NAMES: Record<string, WorkerName> = {
  "layers-agent": "agent",
  "layers-content": "content",
  "layers-api": "api",
};

const localName = (name: string) => (Object.hasOwn(DEPLOYED_NAMES, name) ? DEPLOYED_NAMES[name] : name);

/** Service bindings and Workflows of a config, pointed at the local names of the Workers they name. */
function localReferences(config: WorkerOptions): Partial<WorkerOptions> {
  const out: Record<string, unknown> = {};
  const services = config.serviceBindings as Record<string, unknown> | undefined;
  if (services) {
    out.serviceBindings = Object.fromEntries(
      Object.entries(services).map(([binding, target]) => {
        if (typeof target === "string") return [binding, localName(target)];
        if (target && typeof target === "object" && "name" in target && typeof target.name === "string") {
          return [binding, { ...target, name: localName(target.name) }];
        }
        return [binding, target];
      }),
    );
  }
  const workflows = config.workflows as Record<string, { scriptName?: string }> | undefined;
  if (workflows) {
    out.workflows = Object.fromEntries(
      Object.entries(workflows).map(([binding, workflow]) => [
        binding,
        { ...workflow, ...(workflow.scriptName ? { scriptName: localName(workflow.scriptName) } : {}) },
      ]),
    );
  }
  return out as Partial<WorkerOptions>;
}

/** Where the Workers find Postgres: the owner URL (each Worker gets its own role's) and the bridge. */
export interface LocalDatabase {
  ownerUrl: string;
  /** `host:port/v1` of the WebSocket-to-TCP bridge (scripts/local/ws-bridge.ts). */
  wsProxy: string;
  /** `host:port` of the stand-in for Neon's SQL-over-HTTP endpoint (scripts/local/neon-http.ts): API reads. */
  httpProxy: string;
}

/**
 * A Worker's Miniflare options as its wrangler config declares them (bindings, queues, Durable Objects,
 * rate limits, compatibility), running `scriptPath` (scripts/local/bundle.ts), logged in to the database as
 * its own role (a Worker without a role gets no database variable at all); `bindings` override the
 * config's vars.
 */
export function workerOptions(
  name: WorkerName,
  scriptPath: string,
  database: LocalDatabase,
  bindings: Record<string, string> = {},
): WorkerOptions {
  const spec = WORKERS[name];
  const config = unstable_getMiniflareWorkerOptions(path.join(ROOT, spec.config))
    .workerOptions as WorkerOptions;
  const db = spec.role
    ? {
        DATABASE_URL: roleUrl(database.ownerUrl, spec.role),
        NEON_WS_PROXY: database.wsProxy,
        NEON_HTTP_PROXY: database.httpProxy,
      }
    : {};
  return {
    ...config,
    ...localReferences(config),
    name,
    modules: true,
    scriptPath,
    bindings: { ...config.bindings, ...db, ...bindings },
  };
}
