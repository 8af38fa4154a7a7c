import type { ExecutionContext } from "hono";
import { createIngestApp } from "../../workers/ingest/app";

// Bench only: the ingest Worker's own app, called `n` times inside one request so workerd's CPU per call
// can be read from outside (the workerd process's CPU time in /proc; timers inside workerd are coarsened and
// do not advance during CPU work, so they cannot time it). The queue and rate-limiter bindings are stand-ins
// that accept, as in the Node CPU bench: what is measured is the handler. `mode=bare` runs the same loop
// (request built, body read, response built) without the app: the baseline subtracted.

const app = createIngestApp();

const QUEUE = { sendBatch: async () => {} };
const LIMITER = { limit: async () => ({ success: true }) };
// One stand-in env per isolate, as workerd hands every request the same env: a new object per call would
// make parseEnv validate the vars on every request, which the deployed Worker does once.
const stubbedEnvs = new WeakMap<object, Record<string, unknown>>();

export default {
  async fetch(request: Request, env: Record<string, unknown>, ctx: ExecutionContext): Promise<Response> {
    const url = new URL(request.url);
    const n = Number(url.searchParams.get("n") ?? "1");
    const bare = url.searchParams.get("mode") === "bare";
    const body = await request.text();
    const headers = {
      authorization: request.headers.get("authorization") ?? "",
      "content-type": "application/json",
      "user-agent": request.headers.get("user-agent") ?? "",
    };
    let stubbed = stubbedEnvs.get(env);
    if (!stubbed) {
      stubbed = { ...env, EVENTS_QUEUE: QUEUE, INGEST_RATE_LIMITER: LIMITER };
      stubbedEnvs.set(env, stubbed);
    }
    for (let i = 0; i < n; i++) {
      const inner = new Request("https://ingest.bench/l/events", { method: "POST", headers, body });
      const response = bare
        ? new Response(await inner.text(), { status: 202 })
        : await app.fetch(inner, stubbed, ctx);
      if (response.status !== 202) return new Response(await response.text(), { status: 500 });
      await response.arrayBuffer();
    }
    return new Response("done");
  },
};
