import { z } from "zod";
import {
  CONTENT_KINDS,
  type GeneratedMedia,
  type GenerateRequest,
  isProviderErrorCode,
  PROMPT_LIMITS,
  PROVIDER_NAMES,
  ProviderError,
  type ProviderErrorCode,
  type ProviderName,
  STORYBOARD_FRAMES,
} from "./providers/types";

// The agent Worker's one call, both sides: the request it accepts (a GenerateRequest and nothing else:
// strict, so no project, org or event data rides along) and the client its callers use over a service
// binding (the workflow, later; the tests now).

export const AGENT_LIMITS = {
  /** The largest request body: the longest prompt, JSON-escaped, fits. */
  requestBytes: 128 * 1024,
} as const;

export const agentRequestSchema = z
  .object({
    kind: z.enum(CONTENT_KINDS),
    prompt: z
      .object({
        system: z.string().max(PROMPT_LIMITS.systemChars),
        user: z.string().min(1).max(PROMPT_LIMITS.userChars),
      })
      .strict(),
    frames: z.number().int().min(STORYBOARD_FRAMES.min).max(STORYBOARD_FRAMES.max).optional(),
  })
  .strict();

const STATUS: Record<ProviderErrorCode, number> = {
  invalid_request: 400,
  unsupported_kind: 422,
  provider_rejected: 422,
  provider_auth_failed: 502,
  provider_bad_response: 502,
  provider_unavailable: 503,
  provider_timeout: 504,
  agent_misconfigured: 500,
};

export function agentErrorStatus(code: ProviderErrorCode): number {
  return STATUS[code];
}

/** What `fetch` on a service binding looks like (env.AGENT in the caller's Worker). */
export interface AgentFetcher {
  fetch(input: string, init: RequestInit): Promise<Response>;
}

export interface AgentResult extends GeneratedMedia {
  sha256: string;
}

const hex = (bytes: ArrayBuffer) =>
  [...new Uint8Array(bytes)].map((b) => b.toString(16).padStart(2, "0")).join("");

/**
 * Asks the agent for media. Throws ProviderError with the agent's code (retryable as the code says); an
 * agent that cannot be reached or answers something else is provider_unavailable (retryable). The body's
 * SHA-256 is checked against the agent's header, so a truncated answer is never stored as media.
 */
export async function requestGeneration(agent: AgentFetcher, request: GenerateRequest): Promise<AgentResult> {
  let response: Response;
  try {
    response = await agent.fetch("https://agent.internal/generate", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(request),
    });
  } catch {
    throw new ProviderError("provider_unavailable", "The agent Worker could not be reached.");
  }
  if (response.status !== 200) {
    let code: unknown;
    let message = `The agent answered ${response.status}.`;
    try {
      const body = (await response.json()) as { error?: { code?: unknown; message?: unknown } };
      code = body.error?.code;
      if (typeof body.error?.message === "string") message = body.error.message;
    } catch {
      code = undefined;
    }
    throw new ProviderError(isProviderErrorCode(code) ? code : "provider_unavailable", message);
  }
  const media = new Uint8Array(await response.arrayBuffer());
  const sha256 = hex(await crypto.subtle.digest("SHA-256", media));
  if (sha256 !== response.headers.get("x-layers-sha256")) {
    throw new ProviderError("provider_unavailable", "The agent's answer did not arrive whole.");
  }
  const provider = response.headers.get("x-layers-provider");
  return {
    media,
    sha256,
    mediaType: response.headers.get("content-type") ?? "application/octet-stream",
    provider: (PROVIDER_NAMES as readonly string[]).includes(provider ?? "")
      ? (provider as ProviderName)
      : "local",
    model: response.headers.get("x-layers-model") ?? "",
  };
}
