import { neonConfig } from "@neondatabase/serverless";
import type { ExecutionContext } from "hono";
import WebSocket from "ws";
import { roleUrl } from "../../scripts/local/migrate";
import { startWsBridge } from "../../scripts/local/ws-bridge";
import { BROWSER_USER_AGENT, ingestBody } from "./events";
import type { Resources } from "./resources";

export interface CpuOptions {
  ownerUrl: string;
  sdkKey: string;
  batchSize: number;
  requests: number;
}

export interface CpuFigures {
  requests: number;
  cpuMsPerRequest: number;
  wallMsPerRequest: number;
}

/** Requests are built outside the measured window in chunks of this many (their bodies are ~25 KB each). */
const CHUNK = 250;

/**
 * (c) CPU time of the ingest handler per batch: the real Hono app from workers/ingest/app.ts, run in Node
 * (the same V8 as workerd) with the real key lookup (once, then cached) and stand-ins only for the two
 * bindings that are Cloudflare services: a queue that accepts and a rate limiter that allows.
 * process.cpuUsage() covers the whole process (GC and WebCrypto threads included), so it errs high.
 */
export async function benchCpu(resources: Resources, options: CpuOptions): Promise<CpuFigures> {
  // The app's logger was bound to console.log when its module loaded, so mute by swapping what
  // console.log does rather than the logger: redaction and JSON still run (that is handler CPU),
  // only the write to our stdout is skipped (in workerd it goes to the runtime, not a terminal).
  const realLog = console.log;
  let muted = false;
  console.log = (...args: unknown[]) => {
    if (!muted) realLog(...args);
  };
  resources.add("console.log", async () => {
    console.log = realLog;
  });
  const { createIngestApp } = await import("../../workers/ingest/app");

  // Node 20 has no global WebSocket; the Neon driver needs one, and the bridge, as in workerd.
  neonConfig.webSocketConstructor = WebSocket;
  const target = new URL(options.ownerUrl);
  const bridge = await startWsBridge({ host: target.hostname, port: Number(target.port || 5432) });
  const closeBridge = resources.add("ws bridge (cpu)", () => bridge.close());

  const env = {
    DATABASE_URL: roleUrl(options.ownerUrl, "layers_ingest"),
    NEON_WS_PROXY: `127.0.0.1:${bridge.port}/v1`,
    EVENTS_QUEUE: { sendBatch: async () => {} },
    INGEST_RATE_LIMITER: { limit: async () => ({ success: true }) },
  };
  const pending: Promise<unknown>[] = [];
  const ctx: ExecutionContext = {
    waitUntil: (promise) => {
      pending.push(promise);
    },
    passThroughOnException: () => {},
    props: {},
  };
  const app = createIngestApp();
  const nowMs = Date.now();
  const bodies = Array.from({ length: 32 }, (_, batch) => ingestBody("cpu", batch, options.batchSize, nowMs));
  const requests = (count: number, offset: number) =>
    Array.from(
      { length: count },
      (_, i) =>
        new Request("https://ingest.layers.test/l/events", {
          method: "POST",
          headers: {
            authorization: `Bearer ${options.sdkKey}`,
            "content-type": "application/json",
            "user-agent": BROWSER_USER_AGENT,
          },
          body: bodies[(offset + i) % bodies.length]!,
        }),
    );
  const send = async (request: Request) => {
    const response = await app.fetch(request, env, ctx);
    if (response.status !== 202)
      throw new Error(`cpu bench: ingest answered ${response.status}: ${await response.text()}`);
    await response.arrayBuffer();
  };

  muted = true;
  try {
    // The first request looks the key up in Postgres (then cached for SDK_KEY_CACHE_TTL_SECONDS); the
    // next few hundred let V8 optimise the hot path before anything is measured.
    for (const request of requests(300, 0)) await send(request);
    await Promise.all(pending.splice(0));

    let cpuMicros = 0;
    let wallMs = 0;
    for (let done = 0; done < options.requests; done += CHUNK) {
      const chunk = requests(Math.min(CHUNK, options.requests - done), done);
      const cpuBefore = process.cpuUsage();
      const wallBefore = performance.now();
      for (const request of chunk) await send(request);
      wallMs += performance.now() - wallBefore;
      const cpu = process.cpuUsage(cpuBefore);
      cpuMicros += cpu.user + cpu.system;
    }
    await Promise.all(pending.splice(0));
    return {
      requests: options.requests,
      cpuMsPerRequest: cpuMicros / 1_000 / options.requests,
      wallMsPerRequest: wallMs / options.requests,
    };
  } finally {
    muted = false;
    await closeBridge();
  }
}
