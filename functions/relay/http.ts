import { redact } from "../../shared/logger";

// One platform call with a deadline, classified the way the relay acts on it:
//   2xx                         → ok
//   429                         → retry, honouring Retry-After
//   5xx, timeout, network error → retry with backoff
//   any other 4xx               → rejected: recorded and dead-lettered, never retried (it would fail again)

export type CallResult =
  | { kind: "ok"; status: number; body: unknown }
  | { kind: "retry"; status: number | null; retryAfterSeconds: number | null; error: string }
  | { kind: "rejected"; status: number; body: unknown; error: string };

export type Fetch = (input: string, init: RequestInit) => Promise<Response>;

/** Longest delay a queue message can be retried with (Cloudflare Queues: 12 hours). */
const MAX_RETRY_AFTER_SECONDS = 43_200;

export function parseRetryAfter(header: string | null, now: Date): number | null {
  if (!header) return null;
  const trimmed = header.trim();
  if (/^\d+$/.test(trimmed)) return Math.min(Number(trimmed), MAX_RETRY_AFTER_SECONDS);
  const at = Date.parse(trimmed);
  if (Number.isNaN(at)) return null;
  return Math.min(Math.max(0, Math.ceil((at - now.getTime()) / 1000)), MAX_RETRY_AFTER_SECONDS);
}

/**
 * Error text safe for the delivery log and logs: the secrets named are cut out, then the logger's
 * redaction (emails, phone numbers, IPs, bearer tokens) applies, then it is cut to 300 characters.
 */
export function safeErrorText(text: string, secrets: string[]): string {
  let out = text;
  for (const secret of secrets) if (secret) out = out.split(secret).join("[redacted]");
  return String(redact(out)).slice(0, 300);
}

async function readBody(response: Response): Promise<unknown> {
  const text = await response.text();
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/** The platform's own error message, when it gives one (Meta: error.message; TikTok: message). */
export function platformMessage(body: unknown): string {
  if (typeof body === "string") return body;
  if (body && typeof body === "object") {
    const b = body as { error?: { message?: unknown }; message?: unknown };
    if (b.error && typeof b.error.message === "string") return b.error.message;
    if (typeof b.message === "string") return b.message;
  }
  return "";
}

export async function callPlatform(
  fetchFn: Fetch,
  url: string,
  init: RequestInit,
  options: { timeoutMs: number; now: Date; secrets: string[] },
): Promise<CallResult> {
  let response: Response;
  try {
    response = await fetchFn(url, {
      ...init,
      redirect: "manual",
      signal: AbortSignal.timeout(options.timeoutMs),
    });
  } catch (error) {
    const timedOut = error instanceof Error && (error.name === "TimeoutError" || error.name === "AbortError");
    return {
      kind: "retry",
      status: null,
      retryAfterSeconds: null,
      error: timedOut ? `no answer within ${options.timeoutMs} ms` : "network error",
    };
  }
  let body: unknown;
  try {
    body = await readBody(response);
  } catch {
    return { kind: "retry", status: response.status, retryAfterSeconds: null, error: "answer cut off" };
  }
  const status = response.status;
  if (status >= 200 && status < 300) return { kind: "ok", status, body };
  const error = safeErrorText(`HTTP ${status}: ${platformMessage(body)}`.trim(), options.secrets);
  if (status === 429) {
    return {
      kind: "retry",
      status,
      retryAfterSeconds: parseRetryAfter(response.headers.get("Retry-After"), options.now),
      error,
    };
  }
  if (status >= 500) return { kind: "retry", status, retryAfterSeconds: null, error };
  return { kind: "rejected", status, body, error };
}
