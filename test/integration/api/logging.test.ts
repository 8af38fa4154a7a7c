import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { type Answer, api, type Method } from "../../support/api";
import { createApiTenant } from "../../support/apiTenant";
import type { CreatedApiKey, Member } from "../../support/apiTypes";
import { sha256 } from "../../support/sha256";
import { type Stack, startStack, waitFor } from "../../support/stack";

// The API Worker's log lines (captured from workerd) never carry an API key secret, an Authorization header,
// an Idempotency-Key or a person's email — on the ordinary paths and on the error paths that do log.
// Field-level redaction itself is unit-tested in test/unit/logger.test.ts.

let stack: Stack;
beforeAll(async () => {
  stack = await startStack({ consumer: "recorder" });
});
afterAll(() => stack?.dispose());

interface LogRecord {
  level: string;
  msg: string;
  time: string;
  worker: string;
  requestId?: string;
  error?: unknown;
}

const parsed = () => stack.logs.map((line) => JSON.parse(line) as LogRecord);

/** The log line the API wrote for this request with this message, once it is there. */
function logLine(requestId: string, msg: string): Promise<LogRecord> {
  return waitFor(async () => parsed().find((r) => r.requestId === requestId && r.msg === msg));
}

/** Deferred request-log writes finish before the next step (stopping the database under them would log). */
function requestLogged(requestId: string) {
  return waitFor(() =>
    stack.db
      .selectFrom("request_logs")
      .select("request_id")
      .where("request_id", "=", requestId)
      .executeTakeFirst(),
  );
}

describe("API logs: nothing sensitive", () => {
  test("secrets, Authorization, Idempotency-Key and emails never reach a log line, error paths included", async () => {
    const owner = await createApiTenant(stack.db);
    const tag = randomUUID().slice(0, 8);
    const emails = [`carol.${tag}@example.com`, `dave.${tag}@example.org`, `erin.${tag}@example.net`];
    const idempotencyKeys = [`idem-${randomUUID()}`, `idem-${randomUUID()}`];
    const unknownKey = `lp_live_${"Z".repeat(8)}${tag}${"q".repeat(16)}`;
    const send = <Res = unknown>(
      secret: string,
      method: Method,
      path: string,
      body?: unknown,
      headers: Record<string, string> = {},
    ) => api(stack, secret).send<Res>(method, path, body, { headers });

    // Ordinary traffic: a member with an email (with a replay and a reused key), a bad body with an email,
    // a new API key used at once, an unknown key.
    const first = { email: emails[0], name: `Carol ${tag}`, role: "developer" };
    const withKey = { "Idempotency-Key": idempotencyKeys[0]! };
    const created = await send<Member>(owner.secret, "POST", "/v1/members", first, withKey);
    expect(created.status).toBe(201);
    const member = created.body;
    const replay = await send(owner.secret, "POST", "/v1/members", first, withKey);
    expect(replay.headers.get("Idempotent-Replayed")).toBe("true");
    expect(
      (await send(owner.secret, "POST", "/v1/members", { ...first, email: emails[1] }, withKey)).status,
    ).toBe(422);
    expect(
      (await send(owner.secret, "POST", "/v1/members", { email: emails[1], role: "superuser" })).status,
    ).toBe(400);
    const patched = await send(
      owner.secret,
      "PATCH",
      `/v1/members/${member.id}`,
      { name: emails[1] },
      {
        "Idempotency-Key": idempotencyKeys[1]!,
      },
    );
    expect(patched.status).toBe(200);
    const keyResponse = await send<CreatedApiKey>(owner.secret, "POST", "/v1/api-keys", {
      name: emails[2],
      role: "read_only",
    });
    expect(keyResponse.status).toBe(201);
    const newSecret = keyResponse.body.secret!;
    expect((await send(newSecret, "GET", "/v1/members")).status).toBe(200);
    expect((await send(unknownKey, "GET", "/v1/projects")).status).toBe(401);

    // A NUL byte, which Postgres refuses in text, is bad input: a 400 with no SQL or driver text in it.
    const crash = await send(owner.secret, "POST", "/v1/members", {
      email: emails[2],
      name: `Erin\u0000 ${emails[2]}`,
      role: "developer",
    });
    expect(crash.status).toBe(400);
    const crashBody = crash.text;
    expect(crashBody).toContain("invalid_request");
    expect(crashBody).not.toMatch(/UTF8|0x00|insert|select/i);
    const crashId = crash.headers.get("X-Request-Id")!;

    // The database unreachable during authentication: a 503, and a log line about the key lookup.
    await requestLogged(crashId);
    await stack.stopBridge();
    let outage: Answer<unknown>;
    try {
      outage = await send(owner.secret, "GET", "/v1/projects", undefined, {
        "Idempotency-Key": idempotencyKeys[1]!,
      });
    } finally {
      await stack.restartBridge();
    }
    expect(outage.status).toBe(503);
    expect(await logLine(outage.headers.get("X-Request-Id")!, "api key lookup failed")).toMatchObject({
      level: "error",
    });
    expect((await send(owner.secret, "GET", "/v1/projects")).status).toBe(200);

    // Every captured line is structured JSON from a known worker; none holds anything sensitive.
    expect(parsed().length).toBeGreaterThanOrEqual(1);
    for (const record of parsed()) {
      expect(record).toMatchObject({
        level: expect.any(String),
        msg: expect.any(String),
        time: expect.any(String),
      });
    }
    const logs = stack.logs.join("\n");
    const forbidden = [
      owner.secret,
      newSecret,
      unknownKey,
      `Bearer ${owner.secret}`,
      sha256(owner.secret),
      sha256(newSecret),
      ...emails,
      ...idempotencyKeys,
      tag,
    ];
    for (const value of forbidden) expect(logs).not.toContain(value);
    expect(logs).not.toMatch(/lp_live_[0-9A-Za-z]{8,}/);
    expect(logs).not.toMatch(/bearer\s+(?!\[redacted\])/i);
  });
});
