// Fields that carry a secret (an API key, an SDK key, a token, a signing secret). A secret is shown once, in
// the answer that creates it, and never written anywhere: not to an audit row, not to a stored idempotent
// replay, not to a log. Every place that persists an answer or a diff passes it through here.

const SECRET_FIELD_NAMES = new Set([
  "secret",
  "key_sha256",
  "keySha256",
  "token",
  "accessToken",
  "access_token",
  "password",
  "signingSecret",
  "secretAccessKey",
  // An org-deletion receipt's one-time token (functions/lifecycle/verbs.ts).
  "receiptToken",
]);

/** True when `name` is a field whose value must never be persisted. */
export function isSecretField(name: string): boolean {
  return SECRET_FIELD_NAMES.has(name);
}

/**
 * A deep copy of `value` with every secret field removed ("drop": audit diffs) or set to null ("null": a
 * stored answer keeps its shape, so a replay says plainly that the secret is not there). Dates become ISO text.
 */
export function withoutSecrets(value: unknown, mode: "drop" | "null"): unknown {
  if (value === null || typeof value !== "object") return value;
  if (value instanceof Date) return value.toISOString();
  if (Array.isArray(value)) return value.map((v) => withoutSecrets(v, mode));
  // fromEntries defines own properties, so a key named "__proto__" stays a plain key.
  return Object.fromEntries(
    Object.entries(value).flatMap(([key, v]): [string, unknown][] => {
      if (!isSecretField(key)) return [[key, withoutSecrets(v, mode)]];
      return mode === "null" ? [[key, null]] : [];
    }),
  );
}
