// Structured JSON logs with redaction. Two walls: fields whose names are sensitive are replaced
// whatever they hold, and string values that look like secrets or contact data are masked wherever
// they appear (a message, an error text), so a careless log line cannot leak them.

const SENSITIVE_KEYS = new Set(
  [
    "authorization",
    "cookie",
    "set-cookie",
    "password",
    "secret",
    "token",
    "accesstoken",
    "access_token",
    "apikey",
    "api_key",
    "key",
    "email",
    "phone",
    "ip",
    "cf-connecting-ip",
    "x-forwarded-for",
    "x-real-ip",
    "useragent",
    "user-agent",
    "user_agent",
    "ua",
    "idfa",
    "gaid",
    "madid",
    "adservicestoken",
  ].map((k) => k.toLowerCase()),
);

// Every redaction runs in time linear in the string's length: log lines carry error texts of any size, and
// a pattern that backtracks over a long run (the e-mail regex did: seconds for 40k characters) lets one
// string stall a Worker. Each regex below can start a match only at a literal ("lp_", "Bearer", "+") or a
// boundary and then takes a bounded or unambiguous path; e-mail addresses are found by a scanner.
type Redactor = (value: string) => string;
const replacing =
  (pattern: RegExp, replacement: string): Redactor =>
  (value) =>
    value.replace(pattern, replacement);

/** Characters an e-mail address never holds here (what ends one in free text). */
const NOT_IN_ADDRESS = /[\s@"'<>(),;:]/;
const LETTER = /[A-Za-z]/;

/**
 * Masks exactly what /[^\s@"'<>(),;:]+@[^\s@"'<>(),;:]+\.[A-Za-z]{2,}/g would, in one pass: for each "@",
 * the run of address characters before it (not reaching back into the previous match) and the run after
 * it up to its last "." followed by two letters, and those letters. The regex retried every start inside a
 * long run of address characters, each time scanning to the run's end: quadratic.
 */
function redactEmails(value: string): string {
  const inAddress = (i: number) => !NOT_IN_ADDRESS.test(value.charAt(i));
  const isLetter = (i: number) => i < value.length && LETTER.test(value.charAt(i));
  let out = "";
  let copied = 0; // value up to here is already in `out`
  for (let at = value.indexOf("@"); at !== -1; at = value.indexOf("@", at + 1)) {
    let start = at;
    while (start > copied && inAddress(start - 1)) start -= 1;
    if (start === at) continue;
    let end = at + 1;
    while (end < value.length && inAddress(end)) end += 1;
    let dot = end - 3;
    while (dot >= at + 2 && !(value.charAt(dot) === "." && isLetter(dot + 1) && isLetter(dot + 2))) dot -= 1;
    if (dot < at + 2) continue;
    let stop = dot + 3;
    while (stop < end && isLetter(stop)) stop += 1;
    out += `${value.slice(copied, start)}[redacted-email]`;
    copied = stop;
  }
  return copied === 0 ? value : out + value.slice(copied);
}

const REDACTORS: Redactor[] = [
  replacing(/\b(lp_[a-z]+_)[0-9A-Za-z]{8,}/g, "$1[redacted]"), // our key formats
  replacing(/Bearer\s+\S+/gi, "Bearer [redacted]"),
  redactEmails,
  // International phone numbers ("+49 170 …"); bare digit runs are too often ids or dates to mask.
  replacing(/\+\d[\d\s().-]{6,}\d/g, "[redacted-number]"),
  replacing(/\b\d{1,3}(?:\.\d{1,3}){3}\b/g, "[redacted-ip]"),
  // Compressed IPv6 ("2001:db8::1", "fe80::1ff:fe23:4567:890a", "::1") first, then the full form; the
  // look-arounds keep times such as "12:34:56" intact.
  replacing(
    /(?<![0-9A-Za-z:])(?:(?:[0-9a-fA-F]{1,4}:){1,7}:(?:[0-9a-fA-F]{1,4}(?::[0-9a-fA-F]{1,4}){0,5})?|::[0-9a-fA-F]{1,4}(?::[0-9a-fA-F]{1,4}){0,6})(?![0-9A-Za-z:])/g,
    "[redacted-ip]",
  ),
  replacing(/\b(?:[0-9a-fA-F]{1,4}:){3,7}[0-9a-fA-F]{1,4}\b/g, "[redacted-ip]"),
];

export const REDACTED = "[redacted]";

function redactString(value: string): string {
  let out = value;
  for (const redactor of REDACTORS) out = redactor(out);
  return out;
}

export function redact(value: unknown, depth = 0): unknown {
  if (typeof value === "string") return redactString(value);
  if (typeof value === "bigint") return value.toString(); // JSON.stringify would throw on it
  if (value === null || typeof value !== "object") return value;
  if (depth > 8) return "[truncated]";
  if (value instanceof Error) return { name: value.name, message: redactString(value.message) };
  // Driver errors and events are not always Errors and keep their text in non-enumerable fields.
  if (Object.keys(value).length === 0 && "message" in value && typeof value.message === "string") {
    return { message: redactString(value.message) };
  }
  if (Array.isArray(value)) return value.map((v) => redact(v, depth + 1));
  // fromEntries defines each key as an own property: `out[k] = …` with k "__proto__" (a key JSON.parse
  // makes) would set the copy's prototype instead, and the field would vanish from the log line.
  return Object.fromEntries(
    Object.entries(value).map(([k, v]) => [
      k,
      SENSITIVE_KEYS.has(k.toLowerCase()) ? REDACTED : redact(v, depth + 1),
    ]),
  );
}

export type LogLevel = "debug" | "info" | "warn" | "error";
export type LogFields = Record<string, unknown>;

export interface Logger {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  child(fields: LogFields): Logger;
}

export function createLogger(base: LogFields = {}, sink: (line: string) => void = console.log): Logger {
  const write = (level: LogLevel, msg: string, fields?: LogFields) => {
    const record = redact({ level, msg, time: new Date().toISOString(), ...base, ...fields });
    sink(JSON.stringify(record));
  };
  return {
    debug: (msg, fields) => write("debug", msg, fields),
    info: (msg, fields) => write("info", msg, fields),
    warn: (msg, fields) => write("warn", msg, fields),
    error: (msg, fields) => write("error", msg, fields),
    child: (fields) => createLogger({ ...base, ...fields }, sink),
  };
}
