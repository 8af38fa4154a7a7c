import path from "node:path";
import { Miniflare, type WorkerOptions } from "miniflare";
import { PNG } from "pngjs";
import { afterAll, beforeAll, describe, expect, inject, test } from "vitest";
import { unstable_getMiniflareWorkerOptions } from "wrangler";
import { type AgentFetcher, requestGeneration } from "../../../functions/content/agentProtocol";
import { buildPrompt } from "../../../functions/content/prompt";
import type { Storyboard } from "../../../functions/content/providers/storyboard";
import { ProviderError, STORYBOARD_MEDIA_TYPE } from "../../../functions/content/providers/types";
import { ROOT } from "../../../scripts/local/bundle";
import { WORKERS, workerOptions } from "../../../scripts/local/workers";
import { type FakeProviders, startFakeProviders } from "../../support/fakeProviders";

// The agent Worker in workerd, as `npm run dev` and the tests run it (scripts/local/workers.ts): it has no
// way to any data — no database variable, no queue, bucket, KV, Durable Object or service binding — and
// answers a prompt with media, or with a stable error code.

const DATABASE = {
  ownerUrl: "postgres://owner@127.0.0.1:5432/db",
  wsProxy: "127.0.0.1:1/v1",
  httpProxy: "127.0.0.1:1",
};

/** Every kind of binding Miniflare knows that reaches data or another Worker. */
const DATA_BINDINGS = [
  "d1Databases",
  "kvNamespaces",
  "r2Buckets",
  "queueProducers",
  "queueConsumers",
  "durableObjects",
  "serviceBindings",
  "hyperdrives",
  "workflows",
  "analyticsEngineDatasets",
  "ratelimits",
  "wrappedBindings",
  "outboundService",
] as const;

function agentOptions(vars: Record<string, string> = {}): WorkerOptions {
  return workerOptions("agent", inject("agentScript"), DATABASE, vars);
}

interface Running {
  mf: Miniflare;
  agent: AgentFetcher;
  logs: string[];
}

async function startAgent(vars: Record<string, string> = {}): Promise<Running> {
  const logs: string[] = [];
  const mf = new Miniflare({
    workers: [agentOptions(vars)],
    structuredWorkerdLogs: true,
    handleStructuredLogs: ({ message }: { message: string }) => {
      logs.push(message);
    },
  });
  await mf.ready;
  const worker = await mf.getWorker("agent");
  const agent: AgentFetcher = {
    fetch: (input, init) => worker.fetch(input, init as never) as unknown as Promise<Response>,
  };
  return { mf, agent, logs };
}

const brief = "Launch the Aurora trail shoe for weekend hikers";
const input = { projectId: "proj_1", brief: { text: brief }, product: { name: "Aurora" } };

async function failure(promise: Promise<unknown>) {
  return promise.then(
    () => null,
    (e: unknown) => (e instanceof ProviderError ? { code: e.code, retryable: e.retryable } : e),
  );
}

describe("the agent's bindings", () => {
  test("its wrangler config declares no binding to data, and only provider vars", () => {
    const config = unstable_getMiniflareWorkerOptions(path.join(ROOT, WORKERS.agent.config))
      .workerOptions as Record<string, unknown>;
    for (const kind of DATA_BINDINGS) expect(config[kind] ?? {}, kind).toEqual({});
    expect(Object.keys((config.bindings as object) ?? {}).sort()).toEqual([
      "CONTENT_PROVIDER",
      "PROVIDER_TIMEOUT_MS",
    ]);
    expect(WORKERS.agent.role).toBeUndefined();
  });

  test("as wired for dev and tests: no database variable, no data binding (while every other Worker has one)", () => {
    const options = agentOptions() as Record<string, unknown>;
    for (const kind of DATA_BINDINGS) expect(options[kind] ?? {}, kind).toEqual({});
    const names = Object.keys((options.bindings as object) ?? {});
    expect(names.filter((n) => /DATABASE|NEON|S3_|BUCKET|DESTINATION_KEYS/.test(n))).toEqual([]);
    // The same check finds the database on a Worker that has one: it would catch a binding added to the agent.
    const api = workerOptions("api", inject("apiScript"), DATABASE) as Record<string, unknown>;
    expect(Object.keys((api.bindings as object) ?? {})).toContain("DATABASE_URL");
  });
});

describe("with the local provider (the default)", () => {
  let running: Running;
  beforeAll(async () => {
    running = await startAgent();
  });
  afterAll(() => running?.mf.dispose());

  test("copy, image and reel storyboard, each a real artifact with its SHA-256", async () => {
    const copy = await requestGeneration(running.agent, buildPrompt({ ...input, kind: "copy" }));
    expect(copy).toMatchObject({
      provider: "local",
      model: "layers-local-1",
      mediaType: "text/plain; charset=utf-8",
    });
    expect(new TextDecoder().decode(copy.media)).toContain(brief);

    const image = await requestGeneration(running.agent, buildPrompt({ ...input, kind: "image" }));
    expect(image.mediaType).toBe("image/png");
    expect(PNG.sync.read(Buffer.from(image.media))).toMatchObject({ width: 512, height: 512 });
    expect(image.sha256).toMatch(/^[0-9a-f]{64}$/);

    const reel = await requestGeneration(
      running.agent,
      buildPrompt({ ...input, kind: "reel_storyboard", frames: 3 }),
    );
    expect(reel.mediaType).toBe(STORYBOARD_MEDIA_TYPE);
    const board = JSON.parse(new TextDecoder().decode(reel.media)) as Storyboard;
    expect(board.frames).toHaveLength(3);
    for (const f of board.frames)
      expect(PNG.sync.read(Buffer.from(f.image.base64, "base64")).width).toBe(270);
  });

  test("video, and anything but a prompt, are refused with stable codes; nothing about the prompt is logged", async () => {
    expect(await failure(requestGeneration(running.agent, buildPrompt({ ...input, kind: "video" })))).toEqual(
      {
        code: "unsupported_kind",
        retryable: false,
      },
    );
    // A body with more than a prompt (a project, events) is refused: the agent takes prompts only.
    for (const extra of [{ projectId: "proj_1" }, { events: [{ userId: "u1" }] }]) {
      const response = await running.agent.fetch("https://agent.internal/generate", {
        method: "POST",
        body: JSON.stringify({ kind: "copy", prompt: { system: "", user: "hi" }, ...extra }),
      });
      expect(response.status).toBe(400);
      expect(await response.json()).toMatchObject({ error: { code: "invalid_request", retryable: false } });
    }
    const notJson = await running.agent.fetch("https://agent.internal/generate", {
      method: "POST",
      body: "{",
    });
    expect(notJson.status).toBe(400);
    const tooBig = await running.agent.fetch("https://agent.internal/generate", {
      method: "POST",
      body: "x".repeat(200 * 1024),
    });
    expect(tooBig.status).toBe(400);
    expect(
      (await running.agent.fetch("https://agent.internal/other", { method: "POST", body: "{}" })).status,
    ).toBe(404);
    expect(running.logs.join("\n")).toContain('"msg":"generated"');
    expect(running.logs.join("\n")).not.toContain("Aurora");
  });
});

describe("with a real provider's adapter (against its local fake)", () => {
  let fakes: FakeProviders;
  let running: Running;
  beforeAll(async () => {
    fakes = await startFakeProviders();
    running = await startAgent({
      CONTENT_PROVIDER: "openai",
      OPENAI_API_KEY: fakes.openai.key,
      OPENAI_BASE_URL: fakes.urls.openai,
      PROVIDER_TIMEOUT_MS: "500",
    });
  });
  afterAll(async () => {
    await running?.mf.dispose();
    await fakes?.close();
  });

  test("the prompt goes to the provider with its key and store:false; the media comes back", async () => {
    const copy = await requestGeneration(running.agent, buildPrompt({ ...input, kind: "copy" }));
    expect(copy).toMatchObject({ provider: "openai", model: "gpt-4.1-mini" });
    const image = await requestGeneration(running.agent, buildPrompt({ ...input, kind: "image" }));
    expect(PNG.sync.read(Buffer.from(image.media)).width).toBe(8);
    expect(fakes.openai.calls.map((c) => [c.path, c.problem, c.body.store])).toEqual([
      ["/openai/v1/responses", null, false],
      ["/openai/v1/images/generations", null, undefined],
    ]);
  });

  test("provider failures and timeouts reach the caller as stable codes, retryable or final", async () => {
    fakes.openai.failNext(1, { kind: "status", status: 503 });
    fakes.openai.failNext(1, { kind: "hang" });
    fakes.openai.failNext(1, { kind: "status", status: 400 });
    fakes.openai.failNext(1, { kind: "body", body: "{}" });
    const request = buildPrompt({ ...input, kind: "copy" });
    const results = [];
    for (let i = 0; i < 4; i++) results.push(await failure(requestGeneration(running.agent, request)));
    expect(results).toEqual([
      { code: "provider_unavailable", retryable: true },
      { code: "provider_timeout", retryable: true },
      { code: "provider_rejected", retryable: false },
      { code: "provider_bad_response", retryable: false },
    ]);
    expect(running.logs.join("\n")).toContain('"code":"provider_timeout"');
    expect(running.logs.join("\n")).not.toContain(fakes.openai.key);
  });

  test("a second provider's key in its env: the agent refuses to work (agent_misconfigured)", async () => {
    const wrong = await startAgent({
      CONTENT_PROVIDER: "openai",
      OPENAI_API_KEY: fakes.openai.key,
      ANTHROPIC_API_KEY: "sk-ant-should-not-be-here",
    });
    try {
      expect(await failure(requestGeneration(wrong.agent, buildPrompt({ ...input, kind: "copy" })))).toEqual({
        code: "agent_misconfigured",
        retryable: false,
      });
      expect(wrong.logs.join("\n")).not.toContain("sk-ant-should-not-be-here");
    } finally {
      await wrong.mf.dispose();
    }
  });
});
