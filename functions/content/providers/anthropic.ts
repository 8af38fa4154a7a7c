import { type HttpOptions, isObject, postJson } from "./http";
import { textKind } from "./textKinds";
import {
  type ContentKind,
  type ContentProvider,
  checkRequest,
  type GeneratedMedia,
  type GenerateRequest,
  ProviderError,
} from "./types";

// Anthropic, written to the Messages API (docs.anthropic.com/en/api/messages): POST /v1/messages with
// headers x-api-key, anthropic-version: 2023-06-01 and a JSON body { model, max_tokens, system,
// messages: [{ role: "user", content }] } → content[] blocks of type "text". Claude writes text only, so
// this adapter makes copy and reel storyboards (frames' captions; the pictures are rendered by us) and
// refuses images and video with unsupported_kind before any call.
// Retention (Anthropic, "API and data retention"): API inputs and outputs are not used for training
// without express permission; zero data retention is an arrangement of the *organization* with Anthropic,
// not a request field — no header or body parameter turns it on or off per call. What we control per call:
// we use only the plain Messages endpoint (ZDR-eligible), never the Files API or Message Batches (both
// store content by design), and send no metadata.user_id (no end-user id exists in a content prompt).

export const ANTHROPIC_DEFAULTS = {
  baseUrl: "https://api.anthropic.com/v1",
  version: "2023-06-01",
  model: "claude-sonnet-4-5",
  maxTokens: 2_000,
} as const;

export interface AnthropicConfig extends Omit<HttpOptions, "signal"> {
  apiKey: string;
  baseUrl?: string;
  model?: string;
}

const KINDS: readonly ContentKind[] = ["copy", "reel_storyboard"];

export function messagesText(answer: unknown): string {
  if (!isObject(answer) || !Array.isArray(answer.content)) {
    throw new ProviderError("provider_bad_response", "Anthropic's answer has no content list.");
  }
  return answer.content
    .filter(
      (b): b is { type: "text"; text: string } =>
        isObject(b) && b.type === "text" && typeof b.text === "string",
    )
    .map((b) => b.text)
    .join("");
}

export function createAnthropicProvider(config: AnthropicConfig): ContentProvider {
  const base = (config.baseUrl ?? ANTHROPIC_DEFAULTS.baseUrl).replace(/\/+$/, "");
  const model = config.model ?? ANTHROPIC_DEFAULTS.model;
  const provider: ContentProvider = {
    name: "anthropic",
    kinds: KINDS,
    async generate(request: GenerateRequest, signal?: AbortSignal): Promise<GeneratedMedia> {
      checkRequest(provider, request);
      if (!config.apiKey) throw new ProviderError("provider_auth_failed", "ANTHROPIC_API_KEY is not set.");
      const http = { ...config, ...(signal ? { signal } : {}) };
      return textKind(
        request,
        async (prompt) =>
          messagesText(
            await postJson(
              `${base}/messages`,
              { "x-api-key": config.apiKey, "anthropic-version": ANTHROPIC_DEFAULTS.version },
              {
                model,
                max_tokens: ANTHROPIC_DEFAULTS.maxTokens,
                system: prompt.system,
                messages: [{ role: "user", content: prompt.user }],
              },
              http,
            ),
          ),
        "anthropic",
        model,
      );
    },
  };
  return provider;
}
