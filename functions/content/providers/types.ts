// One interface for every model provider: the agent Worker (workers/agent) calls `generate` with a prompt
// built by functions/content/prompt.ts and gets bytes back. Adapters never see a project, an org or an
// event: the request type has no place for them.

export const CONTENT_KINDS = ["copy", "image", "reel_storyboard", "video"] as const;
export type ContentKind = (typeof CONTENT_KINDS)[number];

export const PROVIDER_NAMES = ["local", "openai", "anthropic", "vertex"] as const;
export type ProviderName = (typeof PROVIDER_NAMES)[number];

/** What a model is asked: a system part (our instructions) and a user part (brief, product, creative). */
export interface GeneratePrompt {
  system: string;
  user: string;
}

export interface GenerateRequest {
  kind: ContentKind;
  prompt: GeneratePrompt;
  /** Frames of a reel storyboard (bounded: STORYBOARD_FRAMES). */
  frames?: number;
}

export interface GeneratedMedia {
  media: Uint8Array;
  /** image/png, text/plain; charset=utf-8, or the storyboard's JSON type (STORYBOARD_MEDIA_TYPE). */
  mediaType: string;
  provider: ProviderName;
  model: string;
}

export interface ContentProvider {
  readonly name: ProviderName;
  /** The kinds this provider can produce; any other is refused with `unsupported_kind` before a call. */
  readonly kinds: readonly ContentKind[];
  generate(request: GenerateRequest, signal?: AbortSignal): Promise<GeneratedMedia>;
}

export const STORYBOARD_FRAMES = { min: 2, max: 12, default: 6 } as const;
export const STORYBOARD_MEDIA_TYPE = "application/vnd.layers.storyboard+json";

/**
 * Stable failure codes. `retryable` tells the caller (the workflow step, later) whether the same request
 * may succeed on another attempt; the code never depends on the provider's wording.
 */
export const PROVIDER_ERRORS = {
  /** No answer within the timeout (ours). */
  provider_timeout: { retryable: true },
  /** 429 or 5xx, or the connection failed: the provider is busy or down. */
  provider_unavailable: { retryable: true },
  /** 401/403: our credential is missing, wrong or lacks access. Retrying cannot help. */
  provider_auth_failed: { retryable: false },
  /** 400/404/422: the provider refused this request (content policy, unknown model, bad shape). */
  provider_rejected: { retryable: false },
  /** An answer we cannot read (no text, no image, bad JSON): a provider change or a malformed output. */
  provider_bad_response: { retryable: false },
  /** This provider cannot make this kind (Anthropic makes no images; no provider makes video here yet). */
  unsupported_kind: { retryable: false },
  /** The request itself is out of bounds (empty prompt, too long, too many frames). */
  invalid_request: { retryable: false },
  /** The agent Worker's vars or secrets are invalid (a deploy error: e.g. a second provider's key set). */
  agent_misconfigured: { retryable: false },
} as const;
export type ProviderErrorCode = keyof typeof PROVIDER_ERRORS;

export class ProviderError extends Error {
  override readonly name = "ProviderError";
  readonly code: ProviderErrorCode;
  readonly retryable: boolean;
  /** The provider's HTTP status, when there was one. */
  readonly status: number | undefined;

  constructor(code: ProviderErrorCode, message: string, status?: number) {
    super(message);
    this.code = code;
    this.retryable = PROVIDER_ERRORS[code].retryable;
    this.status = status;
  }
}

export function isProviderErrorCode(value: unknown): value is ProviderErrorCode {
  return typeof value === "string" && Object.hasOwn(PROVIDER_ERRORS, value);
}

/** Limits on what reaches a provider: a prompt over these is refused before any call. */
export const PROMPT_LIMITS = { systemChars: 4_000, userChars: 20_000 } as const;

export function checkRequest(provider: ContentProvider, request: GenerateRequest): void {
  if (!provider.kinds.includes(request.kind)) {
    throw new ProviderError("unsupported_kind", `The ${provider.name} provider cannot make ${request.kind}.`);
  }
  const { system, user } = request.prompt;
  if (user.trim() === "") throw new ProviderError("invalid_request", "The prompt is empty.");
  if (system.length > PROMPT_LIMITS.systemChars || user.length > PROMPT_LIMITS.userChars) {
    throw new ProviderError(
      "invalid_request",
      `The prompt is longer than ${PROMPT_LIMITS.systemChars} + ${PROMPT_LIMITS.userChars} characters.`,
    );
  }
  const frames = request.frames ?? STORYBOARD_FRAMES.default;
  if (!Number.isInteger(frames) || frames < STORYBOARD_FRAMES.min || frames > STORYBOARD_FRAMES.max) {
    throw new ProviderError(
      "invalid_request",
      `A storyboard has ${STORYBOARD_FRAMES.min} to ${STORYBOARD_FRAMES.max} frames.`,
    );
  }
}
