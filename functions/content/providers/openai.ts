import { fromBase64, type HttpOptions, isObject, postJson, requirePng } from "./http";
import { textKind } from "./textKinds";
import {
  type ContentKind,
  type ContentProvider,
  checkRequest,
  type GeneratedMedia,
  type GenerateRequest,
  ProviderError,
} from "./types";

// OpenAI, written to its HTTP API (platform.openai.com/docs/api-reference):
//  - copy and storyboards: POST /v1/responses { model, instructions, input, store: false, max_output_tokens }
//    → output[].content[] items of type "output_text". `store: false` on every call: the Responses API
//    otherwise keeps the response as application state (30 days) so it can be fetched or chained by
//    previous_response_id; we need neither.
//  - images: POST /v1/images/generations { model: "gpt-image-1", prompt, n: 1, size, output_format: "png" }
//    → data[0].b64_json (GPT image models always answer base64; `response_format` is a DALL·E parameter and
//    is not sent).
// What cannot be set per call (OpenAI, "Data controls in the OpenAI platform"): API data is not used for
// training unless the org opts in (default since 1 March 2023); abuse-monitoring logs keep prompts and
// outputs up to 30 days unless OpenAI approves the org or project for Zero Data Retention or Modified
// Abuse Monitoring — an org setting requested from OpenAI, not a request field. We send no `user` or
// `safety_identifier` (no end-user id exists in a content prompt) and no `previous_response_id`.

export const OPENAI_DEFAULTS = {
  baseUrl: "https://api.openai.com/v1",
  textModel: "gpt-4.1-mini",
  imageModel: "gpt-image-1",
  imageSize: "1024x1024",
  maxOutputTokens: 2_000,
} as const;

export interface OpenAiConfig extends Omit<HttpOptions, "signal"> {
  apiKey: string;
  baseUrl?: string;
  textModel?: string;
  imageModel?: string;
}

const KINDS: readonly ContentKind[] = ["copy", "image", "reel_storyboard"];

/** The text of a Responses API answer: every output_text part of every message item, in order. */
export function responsesText(answer: unknown): string {
  if (!isObject(answer) || !Array.isArray(answer.output)) {
    throw new ProviderError("provider_bad_response", "OpenAI's answer has no output list.");
  }
  const parts: string[] = [];
  for (const item of answer.output) {
    if (!isObject(item) || item.type !== "message" || !Array.isArray(item.content)) continue;
    for (const part of item.content) {
      if (isObject(part) && part.type === "output_text" && typeof part.text === "string")
        parts.push(part.text);
    }
  }
  return parts.join("");
}

export function createOpenAiProvider(config: OpenAiConfig): ContentProvider {
  const base = (config.baseUrl ?? OPENAI_DEFAULTS.baseUrl).replace(/\/+$/, "");
  const textModel = config.textModel ?? OPENAI_DEFAULTS.textModel;
  const imageModel = config.imageModel ?? OPENAI_DEFAULTS.imageModel;
  const headers = { authorization: `Bearer ${config.apiKey}` };
  const provider: ContentProvider = {
    name: "openai",
    kinds: KINDS,
    async generate(request: GenerateRequest, signal?: AbortSignal): Promise<GeneratedMedia> {
      checkRequest(provider, request);
      if (!config.apiKey) throw new ProviderError("provider_auth_failed", "OPENAI_API_KEY is not set.");
      const http = { ...config, ...(signal ? { signal } : {}) };
      if (request.kind === "image") {
        const answer = await postJson(
          `${base}/images/generations`,
          headers,
          {
            model: imageModel,
            prompt: `${request.prompt.system}\n\n${request.prompt.user}`,
            n: 1,
            size: OPENAI_DEFAULTS.imageSize,
            output_format: "png",
          },
          http,
        );
        const first = isObject(answer) && Array.isArray(answer.data) ? answer.data[0] : undefined;
        if (!isObject(first) || typeof first.b64_json !== "string") {
          throw new ProviderError("provider_bad_response", "OpenAI's image answer has no b64_json.");
        }
        return {
          media: requirePng(fromBase64(first.b64_json)),
          mediaType: "image/png",
          provider: "openai",
          model: imageModel,
        };
      }
      return textKind(
        request,
        async (prompt) =>
          responsesText(
            await postJson(
              `${base}/responses`,
              headers,
              {
                model: textModel,
                instructions: prompt.system,
                input: prompt.user,
                store: false,
                max_output_tokens: OPENAI_DEFAULTS.maxOutputTokens,
              },
              http,
            ),
          ),
        "openai",
        textModel,
      );
    },
  };
  return provider;
}
