// Redaction for content generation: what a partner sends with a job (brief, product info, references) may
// hold credentials, signed URLs or fields the partner marks sensitive. Before anything about a job is
// written to a log or a row, it passes through here; the prompt builder also strips credentials and
// signed URLs from what reaches a model (they cannot help it write copy). Redacted values read "..." as
// the seed's activity log shows them.
//
// Every pattern is linear: each can start only at a literal or a word boundary and takes an unambiguous
// path (see shared/logger.ts for why that matters for log lines of any size).

export const REDACTED = "...";

/** Field names whose values are credentials, whatever they hold (compared lower-case, without - and _). */
const CREDENTIAL_FIELDS = new Set(
  [
    "password",
    "passwd",
    "secret",
    "token",
    "accesstoken",
    "refreshtoken",
    "idtoken",
    "apikey",
    "key",
    "accesskey",
    "accesskeyid",
    "secretaccesskey",
    "sessiontoken",
    "privatekey",
    "clientsecret",
    "authorization",
    "auth",
    "cookie",
    "setcookie",
    "credentials",
    "credential",
    "signature",
  ].map((n) => n.toLowerCase()),
);

const normalize = (name: string) => name.toLowerCase().replace(/[-_]/g, "");

export function isCredentialField(name: string): boolean {
  return CREDENTIAL_FIELDS.has(normalize(name));
}

/** Query parameters that carry a token in URLs we see (OAuth, API keys, S3/GCS/Azure presigned URLs). */
const TOKEN_PARAMS = new Set(
  [
    "token",
    "access_token",
    "id_token",
    "refresh_token",
    "auth",
    "key",
    "api_key",
    "apikey",
    "code",
    "sig",
    "signature",
    "secret",
    "password",
    "session",
    "sessionid",
    "jwt",
    "x-amz-signature",
    "x-amz-credential",
    "x-amz-security-token",
    "x-goog-signature",
    "x-goog-credential",
  ].map((n) => n.toLowerCase()),
);

/** A parameter value that looks like a token even under an innocent name: long, letters and digits mixed. */
function looksLikeToken(value: string): boolean {
  return (
    value.length >= 24 && /[A-Za-z]/.test(value) && /\d/.test(value) && /^[A-Za-z0-9._~+/=%-]+$/.test(value)
  );
}

/** One URL with its userinfo and token-bearing parameter values replaced; the rest kept readable. */
export function redactUrl(raw: string): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return raw;
  }
  let changed = false;
  if (url.username || url.password) {
    url.username = "";
    url.password = "";
    changed = true;
  }
  const params = [...url.searchParams];
  const kept = params.map(([name, value]): [string, string] => {
    if (TOKEN_PARAMS.has(name.toLowerCase()) || looksLikeToken(value)) {
      changed = true;
      return [name, REDACTED];
    }
    return [name, value];
  });
  if (url.hash.length > 1 && /(?:token|key|code|sig)=/i.test(url.hash)) {
    url.hash = "";
    changed = true;
  }
  if (!changed) return raw;
  url.search = "";
  // Written by hand: URLSearchParams would percent-encode the "..." marker.
  const query = kept.map(
    ([n, v]) => `${encodeURIComponent(n)}=${v === REDACTED ? v : encodeURIComponent(v)}`,
  );
  return `${url.origin}${url.pathname}${query.length ? `?${query.join("&")}` : ""}${url.hash}`;
}

const CREDENTIAL_PATTERNS: RegExp[] = [
  /Bearer\s+[A-Za-z0-9._~+/=-]+/gi, // Authorization header values
  /Basic\s+[A-Za-z0-9+/=]{8,}/g,
  /\bsk-(?:ant-|proj-)?[A-Za-z0-9_-]{16,}/g, // OpenAI and Anthropic keys
  /\bAIza[0-9A-Za-z_-]{20,}/g, // Google API keys
  /\b(?:AKIA|ASIA)[0-9A-Z]{16}\b/g, // AWS access key ids
  /\blp_[a-z]+_[0-9A-Za-z]{8,}/g, // our own API and SDK keys
  /\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]+/g, // JWTs
  /\b(?:gh[pousr]|github_pat)_[A-Za-z0-9_]{20,}/g, // GitHub tokens
  /-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----/g,
];

/** `name=value` / `name: value` pairs in free text whose name is a credential's ("password: hunter2"). */
const CREDENTIAL_PAIR =
  /\b(password|passwd|secret|token|api[_-]?key|access[_-]?key|client[_-]?secret)(["']?\s*[:=]\s*["']?)([^\s"',;&]+)/gi;

const URL_IN_TEXT = /\bhttps?:\/\/[^\s<>"'`]+/gi;

/** Free text with credentials and the tokens inside URLs replaced by "...". */
export function redactText(text: string): string {
  let out = text.replace(URL_IN_TEXT, (url) => redactUrl(url));
  for (const pattern of CREDENTIAL_PATTERNS) out = out.replace(pattern, REDACTED);
  return out.replace(CREDENTIAL_PAIR, (_m, name: string, sep: string) => `${name}${sep}${REDACTED}`);
}

export interface RedactOptions {
  /**
   * Paths the partner marked sensitive ("brief.text", "product.description", "references.0"): their values
   * become "..." whatever they are. A path names a field of the object given, dot-separated.
   */
  sensitive?: readonly string[];
}

/**
 * A deep copy of `value` safe for a log line or a row: the partner's sensitive paths, every credential
 * field and every credential or URL token inside a string replaced by "...". Keys stay (so a reader sees
 * that something was there); depth and size are bounded.
 */
export function redactFields(value: unknown, options: RedactOptions = {}): unknown {
  const sensitive = new Set(options.sensitive ?? []);
  const walk = (v: unknown, path: string, depth: number): unknown => {
    if (path !== "" && sensitive.has(path)) return REDACTED;
    if (typeof v === "string") return redactText(v);
    if (v === null || typeof v !== "object") return v;
    if (depth > 8) return REDACTED;
    const at = (key: string) => (path === "" ? key : `${path}.${key}`);
    if (Array.isArray(v)) return v.map((item, i) => walk(item, at(String(i)), depth + 1));
    // fromEntries keeps a "__proto__" key an own field instead of setting the copy's prototype.
    return Object.fromEntries(
      Object.entries(v).map(([k, item]) => [
        k,
        isCredentialField(k) ? REDACTED : walk(item, at(k), depth + 1),
      ]),
    );
  };
  return walk(value, "", 0);
}
