import { fromBase64, type HttpOptions, isObject, postJson, requirePng } from "./http";
import { textKind } from "./textKinds";
import {
  type ContentKind,
  type ContentProvider,
  checkRequest,
  type GeneratedMedia,
  type GeneratePrompt,
  type GenerateRequest,
  ProviderError,
} from "./types";

// Google Vertex AI, written to its REST API (cloud.google.com/vertex-ai/generative-ai/docs/reference/rest):
// POST {base}/publishers/google/models/{model}:generateContent with { contents: [{ role: "user", parts:
// [{ text }] }], systemInstruction: { parts: [{ text }] }, generationConfig } → candidates[0].content.parts[]
// holding { text } or, for an image model, { inlineData: { mimeType, data } }. Copy and storyboards use a
// Gemini text model; images a Gemini image model with generationConfig.responseModalities ["TEXT", "IMAGE"].
//
// Credential: an API key in the `x-goog-api-key` header against the global endpoint
// https://aiplatform.googleapis.com/v1 ("Vertex AI in express mode"): a static secret a Worker can hold.
// (The regional endpoint takes an OAuth access token that expires within the hour; minting one from a
// service-account key inside the Worker is not built yet.) Never `?key=` in the URL: URLs are logged.
//
// Data governance (Google Cloud, "Vertex AI and zero data retention"): Google does not train on customer
// data (Service Specific Terms, training restriction) — nothing to set. Zero retention needs actions on
// the *project*, none of which is a request field: disable the 24-hour in-memory cache (cacheConfig
// disableCache: true) and get the abuse-monitoring prompt-logging exception approved. Per call we avoid
// what retains data: no `tools` (grounding with Google Search keeps prompts 30 days), no `cachedContent`
// (explicit context caches store the content), no `labels`.

export const VERTEX_DEFAULTS = {
  baseUrl: "https://aiplatform.googleapis.com/v1",
  textModel: "gemini-2.5-flash",
  imageModel: "gemini-2.5-flash-image",
  maxOutputTokens: 2_000,
} as const;

export interface VertexConfig extends Omit<HttpOptions, "signal"> {
  apiKey: string;
  baseUrl?: string;
  textModel?: string;
  imageModel?: string;
}

const KINDS: readonly ContentKind[] = ["copy", "image", "reel_storyboard"];

function parts(answer: unknown): Record<string, unknown>[] {
  const candidate = isObject(answer) && Array.isArray(answer.candidates) ? answer.candidates[0] : undefined;
  const content = isObject(candidate) ? candidate.content : undefined;
  if (!isObject(content) || !Array.isArray(content.parts)) {
    const reason =
      isObject(candidate) && typeof candidate.finishReason === "string" ? candidate.finishReason : "";
    // A prompt blocked by safety filters answers 200 with no content: that is a refusal, not a glitch.
    if (
      reason === "SAFETY" ||
      reason === "PROHIBITED_CONTENT" ||
      (isObject(answer) && isObject(answer.promptFeedback))
    ) {
      throw new ProviderError(
        "provider_rejected",
        `Vertex AI blocked the prompt${reason ? ` (${reason})` : ""}.`,
      );
    }
    throw new ProviderError("provider_bad_response", "Vertex AI's answer has no candidate content.");
  }
  return content.parts.filter(isObject);
}

function body(prompt: GeneratePrompt, generationConfig: Record<string, unknown>) {
  return {
    contents: [{ role: "user", parts: [{ text: prompt.user }] }],
    systemInstruction: { parts: [{ text: prompt.system }] },
    generationConfig,
  };
}

export function createVertexProvider(config: VertexConfig): ContentProvider {
  const base = (config.baseUrl ?? VERTEX_DEFAULTS.baseUrl).replace(/\/+$/, "");
  const textModel = config.textModel ?? VERTEX_DEFAULTS.textModel;
  const imageModel = config.imageModel ?? VERTEX_DEFAULTS.imageModel;
  const url = (model: string) =>
    `${base}/publishers/google/models/${encodeURIComponent(model)}:generateContent`;
  const headers = { "x-goog-api-key": config.apiKey };
  const provider: ContentProvider = {
    name: "vertex",
    kinds: KINDS,
    async generate(request: GenerateRequest, signal?: AbortSignal): Promise<GeneratedMedia> {
      checkRequest(provider, request);
      if (!config.apiKey) throw new ProviderError("provider_auth_failed", "VERTEX_API_KEY is not set.");
      const http = { ...config, ...(signal ? { signal } : {}) };
      if (request.kind === "image") {
        const answer = await postJson(
          url(imageModel),
          headers,
          body(request.prompt, { responseModalities: ["TEXT", "IMAGE"], candidateCount: 1 }),
          http,
        );
        const image = parts(answer)
          .map((p) => p.inlineData)
          .find((d): d is Record<string, unknown> => isObject(d) && typeof d.data === "string");
        if (!image) throw new ProviderError("provider_bad_response", "Vertex AI's answer has no image.");
        return {
          media: requirePng(fromBase64(image.data as string)),
          mediaType: "image/png",
          provider: "vertex",
          model: imageModel,
        };
      }
      return textKind(
        request,
        async (prompt, json) => {
          const answer = await postJson(
            url(textModel),
            headers,
            body(prompt, {
              candidateCount: 1,
              maxOutputTokens: VERTEX_DEFAULTS.maxOutputTokens,
              ...(json ? { responseMimeType: "application/json" } : {}),
            }),
            http,
          );
          return parts(answer)
            .map((p) => (typeof p.text === "string" && p.thought !== true ? p.text : ""))
            .join("");
        },
        "vertex",
        textModel,
      );
    },
  };
  return provider;
}
