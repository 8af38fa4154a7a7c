import { ProviderError } from "./types";

export type FetchLike = (input: string, init: RequestInit) => Promise<Response>;

export interface HttpOptions {
  /** Injected so tests (and the agent Worker) decide where calls go; defaults to the global fetch. */
  fetch?: FetchLike;
  timeoutMs: number;
  signal?: AbortSignal;
}

/**
 * POSTs JSON and returns the parsed JSON answer, or throws a ProviderError with a stable code. The error
 * message carries the status and the provider's own error *type* only, never its message or our body:
 * either may quote the prompt, and error texts end up in logs and job rows.
 */
export async function postJson(
  url: string,
  headers: Record<string, string>,
  body: unknown,
  options: HttpOptions,
): Promise<unknown> {
  const doFetch = options.fetch ?? ((input, init) => fetch(input, init));
  const controller = new AbortController();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    controller.abort();
  }, options.timeoutMs);
  const onAbort = () => controller.abort();
  options.signal?.addEventListener("abort", onAbort);
  const host = new URL(url).host;
  try {
    let response: Response;
    try {
      response = await doFetch(url, {
        method: "POST",
        headers: { "content-type": "application/json", ...headers },
        body: JSON.stringify(body),
        signal: controller.signal,
        // A provider that redirects is not the provider we configured.
        redirect: "manual",
      });
    } catch {
      if (timedOut)
        throw new ProviderError("provider_timeout", `${host} did not answer in ${options.timeoutMs} ms.`);
      throw new ProviderError("provider_unavailable", `${host} could not be reached.`);
    }
    let text: string;
    try {
      text = await response.text();
    } catch {
      if (timedOut)
        throw new ProviderError("provider_timeout", `${host} did not answer in ${options.timeoutMs} ms.`);
      throw new ProviderError("provider_unavailable", `${host} broke off its answer.`);
    }
    const status = response.status;
    if (status < 200 || status > 299) {
      const kind = errorType(text);
      const what = `${host} answered ${status}${kind ? ` (${kind})` : ""}.`;
      if (status === 401 || status === 403) throw new ProviderError("provider_auth_failed", what, status);
      if (status === 408 || status === 409 || status === 429 || status >= 500)
        throw new ProviderError("provider_unavailable", what, status);
      throw new ProviderError("provider_rejected", what, status);
    }
    try {
      return JSON.parse(text) as unknown;
    } catch {
      throw new ProviderError(
        "provider_bad_response",
        `${host} answered ${status} with a body that is not JSON.`,
      );
    }
  } finally {
    clearTimeout(timer);
    options.signal?.removeEventListener("abort", onAbort);
  }
}

/** The provider's error type or code, as each names it ({ error: { type | code | status } }), if short. */
function errorType(text: string): string | undefined {
  try {
    const parsed = JSON.parse(text) as { error?: { type?: unknown; code?: unknown; status?: unknown } };
    const e = parsed.error;
    const value = e?.type ?? e?.status ?? e?.code;
    if (typeof value === "string" && /^[A-Za-z0-9_.-]{1,64}$/.test(value)) return value;
    if (typeof value === "number") return String(value);
  } catch {
    // not JSON: nothing to name
  }
  return undefined;
}

export const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);

export function fromBase64(value: string): Uint8Array {
  let binary: string;
  try {
    binary = atob(value);
  } catch {
    throw new ProviderError("provider_bad_response", "The provider's image is not base64.");
  }
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

export function toBase64(bytes: Uint8Array): string {
  let binary = "";
  const chunk = 0x8000;
  for (let i = 0; i < bytes.length; i += chunk) {
    binary += String.fromCharCode(...bytes.subarray(i, i + chunk));
  }
  return btoa(binary);
}

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

/** An image a provider returns must be the PNG we asked for, whatever it claims. */
export function requirePng(bytes: Uint8Array): Uint8Array {
  if (bytes.length < 33 || !PNG_SIGNATURE.every((b, i) => bytes[i] === b)) {
    throw new ProviderError("provider_bad_response", "The provider's image is not a PNG.");
  }
  return bytes;
}
