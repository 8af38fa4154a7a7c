import { PNG } from "pngjs";
import { afterAll, beforeAll, beforeEach, describe, expect, test } from "vitest";
import { createProvider, type ProviderConfig } from "../../../functions/content/providers";
import type { Storyboard } from "../../../functions/content/providers/storyboard";
import {
  type ContentKind,
  ProviderError,
  type ProviderName,
  STORYBOARD_MEDIA_TYPE,
} from "../../../functions/content/providers/types";
import { type FakeProviders, startFakeProviders } from "../../support/fakeProviders";

// Each adapter against its provider's local stand-in (test/support/fakeProviders.ts), which checks the
// documented request shape, the authentication header and our privacy options on every call, and answers
// as the provider does. These are the requests that reach OpenAI, Anthropic and Vertex AI in production.

let fakes: FakeProviders;
beforeAll(async () => {
  fakes = await startFakeProviders();
});
afterAll(() => fakes?.close());
beforeEach(() => {
  fakes.openai.reset();
  fakes.anthropic.reset();
  fakes.vertex.reset();
});

const prompt = {
  system: "You write short ad creative for the brand below.",
  user: "Brief:\nLaunch the Aurora trail shoe for weekend hikers",
};

type Real = Exclude<ProviderName, "local">;

function provider(name: Real, overrides: { key?: string; timeoutMs?: number } = {}) {
  const config: ProviderConfig = {
    provider: name,
    timeoutMs: overrides.timeoutMs ?? 5_000,
    openai: { apiKey: overrides.key ?? fakes.openai.key, baseUrl: fakes.urls.openai },
    anthropic: { apiKey: overrides.key ?? fakes.anthropic.key, baseUrl: fakes.urls.anthropic },
    vertex: { apiKey: overrides.key ?? fakes.vertex.key, baseUrl: fakes.urls.vertex },
  };
  return createProvider(config);
}

interface Failure {
  code: string;
  retryable: boolean;
  message: string;
}

async function failure(promise: Promise<unknown>): Promise<Failure | null | unknown> {
  return promise.then(
    () => null,
    (e: unknown) =>
      e instanceof ProviderError ? { code: e.code, retryable: e.retryable, message: e.message } : e,
  );
}

function expectValidCalls(name: Real, count: number) {
  const calls = fakes[name].calls;
  expect(calls.map((c) => c.problem)).toEqual(Array(count).fill(null));
  return calls;
}

describe("OpenAI", () => {
  test("copy: POST /responses with the bearer key, our instructions and input, store:false", async () => {
    const out = await provider("openai").generate({ kind: "copy", prompt });
    expect(new TextDecoder().decode(out.media)).toBe(`Fake copy for: ${prompt.user.slice(0, 80)}`);
    expect(out).toMatchObject({
      provider: "openai",
      model: "gpt-4.1-mini",
      mediaType: "text/plain; charset=utf-8",
    });
    const [call] = expectValidCalls("openai", 1);
    expect(call?.path).toBe("/openai/v1/responses");
    expect(call?.headers.authorization).toBe(`Bearer ${fakes.openai.key}`);
    expect(call?.body).toEqual({
      model: "gpt-4.1-mini",
      instructions: prompt.system,
      input: prompt.user,
      store: false,
      max_output_tokens: 2000,
    });
  });

  test("image: POST /images/generations for one PNG, no response_format, the PNG returned as is", async () => {
    const out = await provider("openai").generate({ kind: "image", prompt });
    expect(out).toMatchObject({ provider: "openai", model: "gpt-image-1", mediaType: "image/png" });
    expect(PNG.sync.read(Buffer.from(out.media)).width).toBe(8);
    const [call] = expectValidCalls("openai", 1);
    expect(call?.path).toBe("/openai/v1/images/generations");
    expect(call?.body).toEqual({
      model: "gpt-image-1",
      prompt: `${prompt.system}\n\n${prompt.user}`,
      n: 1,
      size: "1024x1024",
      output_format: "png",
    });
  });

  test("storyboard: the model's frame plan, with a PNG rendered for each frame", async () => {
    const out = await provider("openai").generate({ kind: "reel_storyboard", prompt, frames: 3 });
    expect(out.mediaType).toBe(STORYBOARD_MEDIA_TYPE);
    const board = JSON.parse(new TextDecoder().decode(out.media)) as Storyboard;
    expect(board.frames.map((f) => [f.caption, f.durationMs])).toEqual([
      ["Fake scene 1", 2000],
      ["Fake scene 2", 2000],
      ["Fake scene 3", 2000],
    ]);
    for (const f of board.frames)
      expect(PNG.sync.read(Buffer.from(f.image.base64, "base64")).height).toBe(480);
    const [call] = expectValidCalls("openai", 1);
    expect(String(call?.body.instructions)).toContain("exactly 3 frames");
    expect(call?.body.store).toBe(false);
  });

  test("the fake refuses a call without store:false: the privacy check is live", async () => {
    const response = await fetch(`${fakes.urls.openai}/responses`, {
      method: "POST",
      headers: { authorization: `Bearer ${fakes.openai.key}`, "content-type": "application/json" },
      body: JSON.stringify({ model: "gpt-4.1-mini", input: "hi" }),
    });
    expect(response.status).toBe(400);
    expect(fakes.openai.calls[0]?.problem).toBe("privacy: store must be false on every call");
  });
});

describe("Anthropic", () => {
  test("copy: POST /messages with x-api-key and anthropic-version, no metadata", async () => {
    const out = await provider("anthropic").generate({ kind: "copy", prompt });
    expect(out).toMatchObject({ provider: "anthropic", model: "claude-sonnet-4-5" });
    expect(new TextDecoder().decode(out.media)).toContain("Fake copy for: Brief:");
    const [call] = expectValidCalls("anthropic", 1);
    expect(call?.path).toBe("/anthropic/v1/messages");
    expect(call?.headers["x-api-key"]).toBe(fakes.anthropic.key);
    expect(call?.headers["anthropic-version"]).toBe("2023-06-01");
    expect(call?.headers.authorization).toBeUndefined();
    expect(call?.body).toEqual({
      model: "claude-sonnet-4-5",
      max_tokens: 2000,
      system: prompt.system,
      messages: [{ role: "user", content: prompt.user }],
    });
  });

  test("storyboard from Claude's JSON; images and video refused before any call", async () => {
    const out = await provider("anthropic").generate({ kind: "reel_storyboard", prompt, frames: 2 });
    expect((JSON.parse(new TextDecoder().decode(out.media)) as Storyboard).frames).toHaveLength(2);
    for (const kind of ["image", "video"] as ContentKind[]) {
      expect(await failure(provider("anthropic").generate({ kind, prompt }))).toMatchObject({
        code: "unsupported_kind",
        retryable: false,
      });
    }
    expect(fakes.anthropic.calls).toHaveLength(1);
  });
});

describe("Vertex AI", () => {
  test("copy: generateContent with x-goog-api-key (never in the URL), no tools, no cache, no labels", async () => {
    const out = await provider("vertex").generate({ kind: "copy", prompt });
    expect(out).toMatchObject({ provider: "vertex", model: "gemini-2.5-flash" });
    expect(new TextDecoder().decode(out.media)).toContain("Fake copy for: Brief:");
    const [call] = expectValidCalls("vertex", 1);
    expect(call?.path).toBe("/vertex/v1/publishers/google/models/gemini-2.5-flash:generateContent");
    expect(call?.headers["x-goog-api-key"]).toBe(fakes.vertex.key);
    expect(call?.body).toEqual({
      contents: [{ role: "user", parts: [{ text: prompt.user }] }],
      systemInstruction: { parts: [{ text: prompt.system }] },
      generationConfig: { candidateCount: 1, maxOutputTokens: 2000 },
    });
  });

  test("image: the image model with IMAGE output, its inline PNG returned; storyboard asks for JSON", async () => {
    const image = await provider("vertex").generate({ kind: "image", prompt });
    expect(image).toMatchObject({ model: "gemini-2.5-flash-image", mediaType: "image/png" });
    expect(PNG.sync.read(Buffer.from(image.media)).width).toBe(8);
    const board = await provider("vertex").generate({ kind: "reel_storyboard", prompt, frames: 5 });
    expect((JSON.parse(new TextDecoder().decode(board.media)) as Storyboard).frames).toHaveLength(5);
    const [imageCall, boardCall] = expectValidCalls("vertex", 2);
    expect(imageCall?.path).toContain("/models/gemini-2.5-flash-image:generateContent");
    expect(imageCall?.body.generationConfig).toEqual({
      responseModalities: ["TEXT", "IMAGE"],
      candidateCount: 1,
    });
    expect(boardCall?.body.generationConfig).toMatchObject({ responseMimeType: "application/json" });
  });
});

describe("failures get stable codes, retryable or final, and never quote the prompt", () => {
  const names: Real[] = ["openai", "anthropic", "vertex"];

  test.each(names)("%s: a wrong key is provider_auth_failed (final); no key, no call", async (name) => {
    const wrong = await failure(provider(name, { key: "wrong" }).generate({ kind: "copy", prompt }));
    expect(wrong).toMatchObject({ code: "provider_auth_failed", retryable: false });
    const calls = fakes[name].calls.length;
    expect(await failure(provider(name, { key: "" }).generate({ kind: "copy", prompt }))).toMatchObject({
      code: "provider_auth_failed",
    });
    expect(fakes[name].calls.length).toBe(calls);
  });

  test.each(
    names,
  )("%s: 429 and 503 are provider_unavailable (retryable), 400 provider_rejected (final)", async (name) => {
    const fake = fakes[name];
    fake.failNext(1, { kind: "status", status: 429, type: "rate_limit_error" });
    fake.failNext(1, { kind: "status", status: 503 });
    fake.failNext(1, { kind: "status", status: 400, type: "invalid_request_error" });
    const p = provider(name);
    const results: Failure[] = [];
    for (let i = 0; i < 3; i++)
      results.push((await failure(p.generate({ kind: "copy", prompt }))) as Failure);
    expect(results.map((r) => [r.code, r.retryable])).toEqual([
      ["provider_unavailable", true],
      ["provider_unavailable", true],
      ["provider_rejected", false],
    ]);
    for (const r of results) expect(JSON.stringify(r)).not.toContain("Aurora");
    // The next call, with no fault left, succeeds.
    expect((await p.generate({ kind: "copy", prompt })).media.length).toBeGreaterThan(0);
  });

  test.each(names)("%s: no answer within the timeout is provider_timeout (retryable)", async (name) => {
    fakes[name].failNext(1, { kind: "hang" });
    const result = await failure(provider(name, { timeoutMs: 300 }).generate({ kind: "copy", prompt }));
    expect(result).toMatchObject({ code: "provider_timeout", retryable: true });
  });

  test.each(names)("%s: an unreadable answer is provider_bad_response (final)", async (name) => {
    fakes[name].failNext(1, { kind: "body", body: "<html>gateway</html>" });
    fakes[name].failNext(1, { kind: "body", body: "{}" });
    const p = provider(name);
    expect(await failure(p.generate({ kind: "copy", prompt }))).toMatchObject({
      code: "provider_bad_response",
      retryable: false,
    });
    expect(await failure(p.generate({ kind: "copy", prompt }))).toMatchObject({
      code: "provider_bad_response",
    });
  });

  test.each(
    names,
  )("%s: a storyboard answer that is not the JSON asked for is provider_bad_response", async (name) => {
    fakes[name].replyWith("Sure! Here are some ideas for your reel.");
    expect(await failure(provider(name).generate({ kind: "reel_storyboard", prompt }))).toMatchObject({
      code: "provider_bad_response",
    });
  });

  test("nothing listening: provider_unavailable (retryable)", async () => {
    const p = createProvider({
      provider: "openai",
      timeoutMs: 2_000,
      openai: { apiKey: "k", baseUrl: "http://127.0.0.1:9/v1" },
    });
    expect(await failure(p.generate({ kind: "copy", prompt }))).toMatchObject({
      code: "provider_unavailable",
      retryable: true,
    });
  });
});
