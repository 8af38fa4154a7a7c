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

const VALUE_PATTERNS: [RegExp, string][] = [
  [/\b(lp_[a-z]+_)[0-9A-Za-z]{8,}/g, "$1[redacted]"], // our key formats
  [/Bearer\s+\S+/gi, "Bearer [redacted]"],
  [/[^\s@"'<>(),;:]+@[^\s@"'<>(),;:]+\.[A-Za-z]{2,}/g, "[redacted-email]"],
  // International phone numbers ("+49 170 …"); bare digit runs are too often ids or dates to mask.
  [/\+\d[\d\s().-]{6,}\d/g, "[redacted-number]"],
  [/\b\d{1,3}(?:\.\d{1,3}){3}\b/g, "[redacted-ip]"],
  // Compressed IPv6 ("2001:db8::1", "fe80::1ff:fe23:4567:890a", "::1") first, then the full form; the
  // look-arounds keep times such as "12:34:56" intact.
  [
    /(?<![0-9A-Za-z:])(?:(?:[0-9a-fA-F]{1,4}:){1,7}:(?:[0-9a-fA-F]{1,4}(?::[0-9a-fA-F]{1,4}){0,5})?|::[0-9a-fA-F]{1,4}(?::[0-9a-fA-F]{1,4}){0,6})(?![0-9A-Za-z:])/g,
    "[redacted-ip]",
  ],
  [/\b(?:[0-9a-fA-F]{1,4}:){3,7}[0-9a-fA-F]{1,4}\b/g, "[redacted-ip]"],
];

export const REDACTED = "[redacted]";

function redactString(value: string): string {
  let out = value;
  for (const [pattern, replacement] of VALUE_PATTERNS) out = out.replace(pattern, replacement);
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
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    out[k] = SENSITIVE_KEYS.has(k.toLowerCase()) ? REDACTED : redact(v, depth + 1);
  }
  return out;
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
