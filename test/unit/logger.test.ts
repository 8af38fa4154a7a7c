import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { ApiError } from "../../shared/errors";
import { createLogger, REDACTED, redact } from "../../shared/logger";

const SECRET_VALUE = "s3cr3t-value-Zq7";

describe("redact: sensitive keys", () => {
  const keys = [
    "authorization",
    "Authorization",
    "cookie",
    "Set-Cookie",
    "password",
    "secret",
    "token",
    "accessToken",
    "access_token",
    "apiKey",
    "api_key",
    "key",
    "email",
    "Email",
    "phone",
    "ip",
    "IP",
    "cf-connecting-ip",
    "X-Forwarded-For",
    "x-real-ip",
    "userAgent",
    "User-Agent",
    "user_agent",
    "ua",
    "idfa",
    "IDFA",
    "gaid",
    "madid",
    "adServicesToken",
  ];

  it.each(keys)("%s is replaced at the top level", (key) => {
    expect(redact({ [key]: SECRET_VALUE, keep: "visible" })).toEqual({ [key]: REDACTED, keep: "visible" });
  });

  it.each(keys)("%s is replaced when nested in objects and arrays", (key) => {
    const input = {
      request: { headers: { [key]: SECRET_VALUE } },
      events: [{ device: { [key]: SECRET_VALUE } }],
    };
    const out = redact(input);
    expect(out).toEqual({
      request: { headers: { [key]: REDACTED } },
      events: [{ device: { [key]: REDACTED } }],
    });
    expect(JSON.stringify(out)).not.toContain(SECRET_VALUE);
  });

  it("a sensitive key is replaced whatever it holds (object, number, array)", () => {
    const out = redact({ email: { primary: "x" }, phone: 15550100000, ip: ["203.0.113.7"] });
    expect(out).toEqual({ email: REDACTED, phone: REDACTED, ip: REDACTED });
  });

  it("ordinary keys and non-string values are kept as they are", () => {
    const input = { projectId: "proj_3HfN8cWq2ZsK6dVt9mRx", accepted: 42, ok: true, none: null, ratio: 0.5 };
    expect(redact(input)).toEqual(input);
  });

  it("does not modify the object it was given", () => {
    const input = { email: "a@b.co", nested: { token: "t" } };
    redact(input);
    expect(input).toEqual({ email: "a@b.co", nested: { token: "t" } });
  });
});

describe("redact: values inside free text", () => {
  it.each([
    ["a publishable SDK key", "key lp_pk_7kR2mQ9xVb3nLp4sT8wYz1aBcDeFgH used", "key lp_pk_[redacted] used"],
    ["a live API key", "auth with lp_live_AbCdEf1234567890 failed", "auth with lp_live_[redacted] failed"],
    ["a Bearer token", "Authorization: Bearer eyJhbGci.eyJzdWIi.sig", "Authorization: Bearer [redacted]"],
    ["a lower-case bearer token", "got bearer abc123", "got Bearer [redacted]"],
    ["an email", "signup from Alice.Smith+x@Example.co.uk ok", "signup from [redacted-email] ok"],
    ["an email in quotes", 'user "bob@example.com" not found', 'user "[redacted-email]" not found'],
    ["a +international phone", "call +49 170 1234567 back", "call [redacted-number] back"],
    ["a US phone in punctuation", "phone=+1 (555) 010-0000;", "phone=[redacted-number];"],
    ["a dotted phone", "+33.6.12.34.56.78", "[redacted-number]"],
    ["an IPv4 address", "request from 203.0.113.7 blocked", "request from [redacted-ip] blocked"],
    ["an IPv4 address with a port", "peer 198.51.100.23:443", "peer [redacted-ip]:443"],
    ["a full IPv6 address", "from 2001:0db8:85a3:0000:0000:8a2e:0370:7334", "from [redacted-ip]"],
    [
      "an IPv6 address without leading zeros",
      "from 2a02:8109:9d40:1a00:5d1c:2b3e:4f5a:6b7c.",
      "from [redacted-ip].",
    ],
    ["a compressed IPv6 address", "from 2001:db8::1 via edge", "from [redacted-ip] via edge"],
    [
      "a compressed IPv6 address in the middle",
      "client 2001:db8:85a3::8a2e:370:7334 ok",
      "client [redacted-ip] ok",
    ],
    ["a link-local IPv6 address", "fe80::1ff:fe23:4567:890a", "[redacted-ip]"],
  ])("%s is masked", (_label, input, expected) => {
    expect(redact(input)).toBe(expected);
  });

  it.each([
    ["an ISO timestamp", "2025-03-10T12:34:56.789Z"],
    ["an ISO timestamp with an offset", "2025-03-10T14:34:56+02:00"],
    ["a time of day", "retry at 12:34:56"],
    ["a date", "2025-03-10"],
    ["an org id", "org_7kR2mQ9xVb3nLp4sT8wY"],
    ["a request id", "req_3HfN8cWq2ZsK6dVt9mRx"],
    ["a UUID", "6d92078a-8246-4ba4-ae5b-76104861e7dc"],
    ["a SHA-256 digest", "62a14e44f765419d10fea99367361a727c12365e2520f32218d505ed9aa0f62f"],
    ["an event id", "evt-00042"],
    ["a version", "ua-parser-js 1.0.41, iOS 17.4.1"],
    ["a bare digit run (ids, counts)", "accepted 1234567890 events"],
    ["a key display prefix only", "lp_pk_7kR2"],
    ["an at sign without a domain", "@mention in a message"],
    ["a queue name", "events-dlq"],
  ])("%s is left intact", (_label, input) => {
    expect(redact(input)).toBe(input);
  });

  it("masks several different values in one string", () => {
    expect(redact("a@b.io from 10.0.0.1 with Bearer x.y.z and +44 20 7946 0958")).toBe(
      "[redacted-email] from [redacted-ip] with Bearer [redacted] and [redacted-number]",
    );
  });
});

describe("redact: time linear in the input's length", () => {
  // The redaction as it was before the e-mail pattern became a scanner; kept as the reference the
  // scanner must agree with (on short strings, where its quadratic backtracking does not matter).
  const REFERENCE: [RegExp, string][] = [
    [/\b(lp_[a-z]+_)[0-9A-Za-z]{8,}/g, "$1[redacted]"],
    [/Bearer\s+\S+/gi, "Bearer [redacted]"],
    [/[^\s@"'<>(),;:]+@[^\s@"'<>(),;:]+\.[A-Za-z]{2,}/g, "[redacted-email]"],
    [/\+\d[\d\s().-]{6,}\d/g, "[redacted-number]"],
    [/\b\d{1,3}(?:\.\d{1,3}){3}\b/g, "[redacted-ip]"],
    [
      /(?<![0-9A-Za-z:])(?:(?:[0-9a-fA-F]{1,4}:){1,7}:(?:[0-9a-fA-F]{1,4}(?::[0-9a-fA-F]{1,4}){0,5})?|::[0-9a-fA-F]{1,4}(?::[0-9a-fA-F]{1,4}){0,6})(?![0-9A-Za-z:])/g,
      "[redacted-ip]",
    ],
    [/\b(?:[0-9a-fA-F]{1,4}:){3,7}[0-9a-fA-F]{1,4}\b/g, "[redacted-ip]"],
  ];
  const reference = (value: string) =>
    REFERENCE.reduce((out, [pattern, replacement]) => out.replace(pattern, replacement), value);

  it("masks exactly what the e-mail regex masked, on 20,000 random strings built from its edge characters", () => {
    let seed = 42; // a fixed xorshift sequence: the same strings on every run
    const next = () => {
      seed ^= seed << 13;
      seed ^= seed >>> 17;
      seed ^= seed << 5;
      return (seed >>> 0) / 2 ** 32;
    };
    const alphabet = [
      "a",
      "B",
      "z",
      "1",
      "@",
      "@",
      ".",
      ".",
      " ",
      "\u00a0",
      '"',
      "(",
      ":",
      ";",
      "-",
      "_",
      "+",
      "é",
    ];
    for (let i = 0; i < 20_000; i++) {
      const length = Math.floor(next() * 24);
      let value = "";
      for (let j = 0; j < length; j++) value += alphabet[Math.floor(next() * alphabet.length)];
      expect(redact(value), JSON.stringify(value)).toBe(reference(value));
    }
  });

  it("a 24k and a 96k character adversarial string: four times the length takes about four times as long, not sixteen", () => {
    // Long runs that made backtracking patterns retry every start: "a@" repeated, a run of address
    // characters before one "@", a long domain with and without dots, digit runs (phone, IPv4), "+1"
    // followed by separators, dotted and colon-separated runs (IPv4, IPv6), an unfinished key.
    const adversarial = (n: number) => {
      const part = n / 12;
      return [
        "a@".repeat(part / 2),
        `${"a".repeat(part)}@`,
        `x@${"b".repeat(part)}`,
        `x@${"b.".repeat(part / 2)}`,
        "1".repeat(part),
        `+1${" ".repeat(part)}`,
        "+1 ".repeat(part / 3),
        "1.".repeat(part / 2),
        "1:".repeat(part / 2),
        "1::".repeat(part / 3),
        `lp_${"a".repeat(part)}`,
        "Bearer ".repeat(part / 7),
      ].join(" ");
    };
    const small = adversarial(24_000);
    const large = adversarial(96_000);
    expect(large.length).toBeGreaterThanOrEqual(96_000);
    // No wall-clock threshold: the same work at two sizes, measured in the same run. Each figure is the
    // fastest of many short rounds, the sizes taking turns: on a busy machine a short round often runs
    // unpreempted, and its minimum is the work itself. Linear work gives a ratio near 4, quadratic near 16.
    const time = (value: string) => {
      const started = performance.now();
      redact(value);
      return performance.now() - started;
    };
    time(small); // warm-up
    time(large);
    let smallBest = Number.POSITIVE_INFINITY;
    let largeBest = Number.POSITIVE_INFINITY;
    const deadline = performance.now() + 3_000;
    for (let i = 0; i < 40 && (i < 2 || performance.now() < deadline); i++) {
      smallBest = Math.min(smallBest, time(small));
      largeBest = Math.min(largeBest, time(large));
    }
    expect(largeBest / smallBest).toBeLessThan(8);
  }, 120_000);
});

describe("redact: errors", () => {
  it("an Error becomes its name and a redacted message, nothing else", () => {
    const error = Object.assign(new Error("insert failed for bob@example.com from 198.51.100.4"), {
      email: "bob@example.com",
    });
    const out = redact(error);
    expect(out).toEqual({ name: "Error", message: "insert failed for [redacted-email] from [redacted-ip]" });
    expect(JSON.stringify(out)).not.toContain("bob@example.com");
  });

  it.each([
    ["TypeError", new TypeError("bad token lp_pk_7kR2mQ9xVb3nLp4sT8wYz1"), "bad token lp_pk_[redacted]"],
    ["ApiError", new ApiError("unauthorized", "Bearer abc rejected"), "Bearer [redacted] rejected"],
  ])("a %s keeps its name", (name, error, message) => {
    expect(redact(error)).toEqual({ name, message });
  });

  it("an Error nested in log fields is reduced too (no stack)", () => {
    const out = redact({ context: { error: new Error("down: +1 (555) 010-0000") } });
    expect(out).toEqual({ context: { error: { name: "Error", message: "down: [redacted-number]" } } });
  });
});

describe("createLogger", () => {
  const NOW = "2025-03-10T12:34:56.789Z";
  let lines: string[];
  const sink = (line: string) => lines.push(line);
  const record = (i = 0): Record<string, unknown> =>
    JSON.parse(lines[i] ?? "null") as Record<string, unknown>;

  beforeEach(() => {
    lines = [];
    vi.useFakeTimers({ toFake: ["Date"] });
    vi.setSystemTime(new Date(NOW));
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it.each([
    "debug",
    "info",
    "warn",
    "error",
  ] as const)("%s writes one JSON line with level, msg and an intact time", (level) => {
    createLogger({ worker: "ingest" }, sink)[level]("events accepted", { accepted: 3 });
    expect(lines).toHaveLength(1);
    expect(record()).toEqual({ level, msg: "events accepted", time: NOW, worker: "ingest", accepted: 3 });
  });

  it("redacts fields, the message and base fields", () => {
    const log = createLogger({ worker: "ingest", token: "base-secret" }, sink);
    log.error("enqueue failed for carol@example.com", {
      requestId: "req_3HfN8cWq2ZsK6dVt9mRx",
      headers: { Authorization: "Bearer lp_pk_7kR2mQ9xVb3nLp4sT8wYz1", "User-Agent": "Mozilla/5.0 (iPhone)" },
      ip: "203.0.113.7",
      error: new Error("timeout from 198.51.100.4"),
    });
    expect(record()).toEqual({
      level: "error",
      msg: "enqueue failed for [redacted-email]",
      time: NOW,
      worker: "ingest",
      token: REDACTED,
      requestId: "req_3HfN8cWq2ZsK6dVt9mRx",
      headers: { Authorization: REDACTED, "User-Agent": REDACTED },
      ip: REDACTED,
      error: { name: "Error", message: "timeout from [redacted-ip]" },
    });
    for (const raw of [
      "carol@example.com",
      "base-secret",
      "lp_pk_7kR2",
      "Mozilla",
      "203.0.113.7",
      "198.51.100.4",
    ]) {
      expect(lines[0]).not.toContain(raw);
    }
  });

  it("a child logger carries its parent's fields and its own, redacted alike", () => {
    const child = createLogger({ worker: "consumer" }, sink).child({ projectId: "proj_1", email: "d@e.fr" });
    child.warn("dropped");
    expect(record()).toEqual({
      level: "warn",
      msg: "dropped",
      time: NOW,
      worker: "consumer",
      projectId: "proj_1",
      email: REDACTED,
    });
  });

  it("a request's logger (a child of a child, as the API makes one) keeps every level's fields and redacts each", () => {
    const request = createLogger({ worker: "api" }, sink).child({ requestId: "req_1" });
    const known = request.child({ orgId: "org_1", route: "/v1/projects/:projectId", token: "tok-123" });
    known.error("lookup failed for ann@example.org", { requestId: "req_overridden", ip: "203.0.113.9" });
    expect(record()).toEqual({
      level: "error",
      msg: "lookup failed for [redacted-email]",
      time: NOW,
      worker: "api",
      // A line's own field wins over the one its logger carries.
      requestId: "req_overridden",
      orgId: "org_1",
      route: "/v1/projects/:projectId",
      token: REDACTED,
      ip: REDACTED,
    });
    // The parent is not changed by its child.
    request.info("answered");
    expect(record(1)).toEqual({
      level: "info",
      msg: "answered",
      time: NOW,
      worker: "api",
      requestId: "req_1",
    });
  });
});
