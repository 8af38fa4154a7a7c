import { createAnthropicProvider } from "./anthropic";
import type { FetchLike } from "./http";
import { createLocalProvider } from "./local";
import { createOpenAiProvider } from "./openai";
import { type ContentProvider, ProviderError, type ProviderName } from "./types";
import { createVertexProvider } from "./vertex";

export * from "./types";

/** Everything a provider may be configured with; each reads only its own fields (its key among them). */
export interface ProviderConfig {
  provider: ProviderName;
  timeoutMs: number;
  fetch?: FetchLike;
  openai?: { apiKey?: string; baseUrl?: string; textModel?: string; imageModel?: string };
  anthropic?: { apiKey?: string; baseUrl?: string; model?: string };
  vertex?: { apiKey?: string; baseUrl?: string; textModel?: string; imageModel?: string };
}

const defined = <T extends object>(o: T | undefined): Partial<T> =>
  Object.fromEntries(Object.entries(o ?? {}).filter(([, v]) => v !== undefined)) as Partial<T>;

export function createProvider(config: ProviderConfig): ContentProvider {
  const http = { timeoutMs: config.timeoutMs, ...(config.fetch ? { fetch: config.fetch } : {}) };
  switch (config.provider) {
    case "local":
      return createLocalProvider();
    case "openai":
      return createOpenAiProvider({
        ...http,
        ...defined(config.openai),
        apiKey: config.openai?.apiKey ?? "",
      });
    case "anthropic":
      return createAnthropicProvider({
        ...http,
        ...defined(config.anthropic),
        apiKey: config.anthropic?.apiKey ?? "",
      });
    case "vertex":
      return createVertexProvider({
        ...http,
        ...defined(config.vertex),
        apiKey: config.vertex?.apiKey ?? "",
      });
    default:
      throw new ProviderError("invalid_request", `Unknown provider ${String(config.provider)}.`);
  }
}
