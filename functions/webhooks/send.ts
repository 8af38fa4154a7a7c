import { redact } from "../../shared/logger";
import { webhookHeaders } from "./sign";
import { checkWebhookUrl } from "./ssrf";

// One signed POST to a partner's endpoint, shared by the delivery Worker and the API's test-send. It never
// throws for anything the receiver or the network does: every outcome is a result to record.
//
//   - the URL is checked by the SSRF guard first (again: a URL stored under older rules is still refused);
//   - redirects are not followed (`redirect: "manual"`): a 3xx is a failed attempt, so a public URL cannot
//     bounce the request to an address the guard refuses;
//   - one deadline (AbortSignal) covers connecting, the answer's headers and the excerpt's read;
//   - of the answer's body at most RESPONSE_EXCERPT_BYTES are kept, read chunk by chunk with a byte cap and
//     the stream cancelled after it: a receiver answering gigabytes costs us a few kilobytes.

export type Fetch = (input: string, init: RequestInit) => Promise<Response>;

/** Bytes of the receiver's answer kept in the attempt log. */
export const RESPONSE_EXCERPT_BYTES = 256;
/**
 * Bytes read before cutting secrets: a little more than kept, so a secret straddling the 256th byte is
 * still recognised whole and cut, not kept half.
 */
const READ_CAP_BYTES = RESPONSE_EXCERPT_BYTES + 128;

export const WEBHOOK_USER_AGENT = "Layers-Webhooks/1 (+https://docs.layers.com/webhooks)";

/**
 * Why an attempt failed when there is no 2xx to show: `http_status` (the receiver answered non-2xx),
 * `redirect_not_followed` (3xx), `timeout`, `connection_failed` (DNS, TLS, refused, reset), `url_refused`
 * (the SSRF guard: the request was never made).
 */
export type SendErrorCode =
  | "http_status"
  | "redirect_not_followed"
  | "timeout"
  | "connection_failed"
  | "url_refused";

export interface SendWebhookInput {
  url: string;
  /** Active signing secrets (`whsec_…`), current first; each adds one signature. */
  secrets: string[];
  /** The message id: the `webhook-id` header, the same on every retry. */
  messageId: string;
  /** This attempt's time (a Date, or seconds since the epoch): the `webhook-timestamp` header. */
  timestamp: Date | number;
  /** The JSON payload exactly as signed. */
  body: string;
  timeoutMs: number;
  /** Plain http to localhost allowed (dev and tests only). Default false: https only. */
  allowLocalHttp?: boolean;
  fetch?: Fetch;
}

export interface SendWebhookResult {
  /** The receiver's HTTP status, or null when no answer came (timeout, connection failure, refused URL). */
  statusCode: number | null;
  durationMs: number;
  /** The first bytes of the answer (≤ 256 bytes, UTF-8), secrets and personal data cut; null when none. */
  responseExcerpt: string | null;
  /** Null on a 2xx. */
  errorCode: SendErrorCode | null;
  /** A short, safe description of the failure for the attempt log (no secrets, no body). */
  errorMessage: string | null;
}

const decoder = () => new TextDecoder("utf-8");

/** Reads at most `cap` bytes of a body, then cancels the rest of the stream. */
async function readCapped(response: Response, cap: number): Promise<Uint8Array> {
  const body = response.body;
  if (!body) return new Uint8Array(0);
  const reader = body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  try {
    while (total < cap) {
      const { done, value } = await reader.read();
      if (done) break;
      const room = cap - total;
      const chunk = value.byteLength > room ? value.subarray(0, room) : value;
      chunks.push(chunk);
      total += chunk.byteLength;
    }
  } finally {
    // Not awaited: a receiver that stalls the rest of its body must not hold the attempt.
    reader.cancel().catch(() => {});
  }
  const out = new Uint8Array(total);
  let at = 0;
  for (const chunk of chunks) {
    out.set(chunk, at);
    at += chunk.byteLength;
  }
  return out;
}

/** `text` without a trailing start of `secret` (the read cap cut the rest of it off). */
function withoutSecretStartAtEnd(text: string, secret: string): string {
  for (let k = Math.min(secret.length - 1, text.length); k > 0; k -= 1) {
    if (text.endsWith(secret.slice(0, k))) return text.slice(0, text.length - k);
  }
  return text;
}

/**
 * Cuts the named secrets (whole, and their base64 key part) and what the logger redacts; ≤ 256 bytes.
 * `cut`: the read stopped at its cap, so the text may end in the start of a secret whose rest was never
 * read; that start goes too (redaction can shorten what precedes it and pull it into the kept bytes).
 */
export function safeExcerpt(text: string, secrets: string[], cut = false): string {
  let out = text;
  for (const secret of secrets) {
    if (!secret) continue;
    out = out.split(secret).join("[redacted]");
    const key = secret.replace(/^whsec_/, "");
    if (key.length >= 16) out = out.split(key).join("[redacted]");
    if (cut) out = withoutSecretStartAtEnd(withoutSecretStartAtEnd(out, secret), key);
  }
  out = String(redact(out));
  // NUL is valid UTF-8 but Postgres text refuses it: kept, it would fail the attempt log's insert and with
  // it the record transaction of the org's whole batch (every answer in it lost, each delivery re-sent after
  // its lease, for ever, while the receiver answers the same). Shown as U+FFFD, as undecodable bytes are.
  out = out.replaceAll("\u0000", "\uFFFD");
  const bytes = new TextEncoder().encode(out);
  if (bytes.byteLength <= RESPONSE_EXCERPT_BYTES) return out;
  // Cut on a character boundary: a partial multi-byte sequence at the end is dropped, not mangled.
  return decoder()
    .decode(bytes.subarray(0, RESPONSE_EXCERPT_BYTES))
    .replace(/\uFFFD$/, "");
}

function isTimeout(error: unknown): boolean {
  return error instanceof Error && (error.name === "TimeoutError" || error.name === "AbortError");
}

export async function sendWebhook(input: SendWebhookInput): Promise<SendWebhookResult> {
  const started = Date.now();
  const elapsed = () => Math.max(0, Date.now() - started);
  const guard = checkWebhookUrl(input.url, { allowLocalHttp: input.allowLocalHttp ?? false });
  if (!guard.ok) {
    return {
      statusCode: null,
      durationMs: 0,
      responseExcerpt: null,
      errorCode: "url_refused",
      errorMessage: `${guard.code}: ${guard.message}`,
    };
  }
  const timestampSeconds =
    input.timestamp instanceof Date
      ? Math.floor(input.timestamp.getTime() / 1000)
      : Math.floor(input.timestamp);
  const headers = await webhookHeaders({
    secrets: input.secrets,
    messageId: input.messageId,
    timestampSeconds,
    body: input.body,
  });
  const doFetch: Fetch = input.fetch ?? ((url, init) => fetch(url, init));
  const signal = AbortSignal.timeout(input.timeoutMs);
  let response: Response;
  try {
    response = await doFetch(input.url, {
      method: "POST",
      headers: { ...headers, "content-type": "application/json", "user-agent": WEBHOOK_USER_AGENT },
      body: input.body,
      redirect: "manual",
      signal,
    });
  } catch (error) {
    const timedOut = isTimeout(error) || signal.aborted;
    return {
      statusCode: null,
      durationMs: elapsed(),
      responseExcerpt: null,
      errorCode: timedOut ? "timeout" : "connection_failed",
      errorMessage: timedOut
        ? `No answer within ${input.timeoutMs} ms.`
        : safeExcerpt(error instanceof Error ? error.message : String(error), input.secrets),
    };
  }
  const status = response.status;
  let excerpt: string | null = null;
  try {
    const bytes = await readCapped(response, READ_CAP_BYTES);
    excerpt =
      bytes.byteLength === 0
        ? null
        : safeExcerpt(decoder().decode(bytes), input.secrets, bytes.byteLength >= READ_CAP_BYTES);
  } catch {
    // The body failed or timed out mid-read: the status already is the receiver's answer.
    excerpt = null;
  }
  const durationMs = elapsed();
  if (status >= 200 && status < 300) {
    return { statusCode: status, durationMs, responseExcerpt: excerpt, errorCode: null, errorMessage: null };
  }
  const redirect = status >= 300 && status < 400;
  return {
    statusCode: status,
    durationMs,
    responseExcerpt: excerpt,
    errorCode: redirect ? "redirect_not_followed" : "http_status",
    errorMessage: redirect ? `Redirect (${status}) not followed.` : `The receiver answered ${status}.`,
  };
}
