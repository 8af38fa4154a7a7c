// Strings JSON accepts and Postgres refuses: the NUL character (text and jsonb cannot hold it) and a lone
// UTF-16 surrogate ("\ud800" is valid JSON, but no character: jsonb refuses the escape). Accepted at the
// edge, one of them would make the database refuse the whole queue message on every retry, so they are
// refused where they come in, with a clear error.

// A high surrogate not followed by a low one, or a low one not preceded by a high one.
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

function problemOf(s: string): string | null {
  if (s.includes("\u0000")) return "the NUL character (\\u0000)";
  if (LONE_SURROGATE.test(s)) return "an unpaired UTF-16 surrogate (e.g. \\ud800)";
  return null;
}

/** Why `value` (any JSON value: keys and strings at every depth) cannot be stored, or null when it can. */
export function unstorableText(value: unknown, depth = 0): string | null {
  if (typeof value === "string") return problemOf(value);
  if (value === null || typeof value !== "object" || depth > 64) return null;
  for (const [key, child] of Object.entries(value)) {
    const problem = (Array.isArray(value) ? null : problemOf(key)) ?? unstorableText(child, depth + 1);
    if (problem) return problem;
  }
  return null;
}

/** A cheap first look at a raw JSON body: only a body with a \u0000 or \ud800–\udfff escape can hold one. */
export function mayHoldUnstorableText(json: string): boolean {
  return /\\u(?:0000|[dD][89a-fA-F])/.test(json);
}
