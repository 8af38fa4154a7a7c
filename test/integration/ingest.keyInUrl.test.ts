import { afterAll, beforeAll, describe, expect, test } from "vitest";
import type { EventsMessage } from "../../shared/schemas/queue";
import { type Stack, startStack, waitFor } from "../support/stack";
import { createTenant, type TestTenant } from "../support/tenant";

// `POST /l/events?key=lp_pk_…` with a text/plain body: what a browser sends without a CORS preflight
// (sendBeacon, or fetch with no custom header) when a page is being closed. The same validation, limits and
// errors as with the key in Authorization; the content types it takes are named; a secret API key is
// never accepted there; and the key in the URL never reaches a log line.

let stack: Stack;
let tenant: TestTenant;
beforeAll(async () => {
  stack = await startStack({ consumer: "recorder" });
  tenant = await createTenant(stack.db);
});
afterAll(() => stack?.dispose());

function beacon(
  body: string,
  options: {
    key?: string;
    query?: string;
    contentType?: string | null;
    headers?: Record<string, string>;
  } = {},
): Promise<Response> {
  const query = options.query ?? `key=${options.key ?? tenant.sdkKey}`;
  const headers: Record<string, string> = { Origin: "https://shop.example", ...options.headers };
  const contentType = options.contentType === undefined ? "text/plain;charset=UTF-8" : options.contentType;
  if (contentType !== null) headers["Content-Type"] = contentType;
  return stack.mf.dispatchFetch(`http://ingest.test/l/events?${query}`, {
    method: "POST",
    headers,
    body,
    cf: { country: "DE", region: "Bavaria" },
  }) as unknown as Promise<Response>;
}

/** Sends a marker event (key in the header) and returns every event enqueued up to and including it. */
async function drainQueue(): Promise<EventsMessage["events"]> {
  const marker = `marker-${crypto.randomUUID()}`;
  expect((await stack.ingest({ eventId: marker, name: "marker" }, { key: tenant.sdkKey })).status).toBe(202);
  const seen: EventsMessage[] = [];
  await waitFor(async () => {
    seen.push(...((await stack.takeRecorded()) as EventsMessage[]));
    return seen.some((m) => m.events.some((e) => e.eventId === marker)) ? true : undefined;
  });
  return seen.flatMap((m) => m.events).filter((e) => e.eventId !== marker);
}

async function expectError(res: Response, status: number, code: string): Promise<string> {
  expect(res.status).toBe(status);
  const body = (await res.json()) as { error: { code: string; message: string } };
  expect(body.error.code).toBe(code);
  return body.error.message;
}

const batch = (...ids: string[]) =>
  JSON.stringify({ sentAt: Date.now(), events: ids.map((eventId) => ({ eventId, name: "view_item" })) });

describe("the SDK key in the URL", () => {
  test("a text/plain batch is accepted, queued and answered with CORS for any origin", async () => {
    const res = await beacon(batch("url-1", "url-2"));
    expect(res.status).toBe(202);
    expect(await res.json()).toEqual({ accepted: 2, rejected: [] });
    expect(res.headers.get("Access-Control-Allow-Origin")).toBe("*");
    expect((await drainQueue()).map((e) => e.eventId)).toEqual(["url-1", "url-2"]);
  });

  test.each([
    ["text/plain", "text/plain"],
    ["application/json", "application/json; charset=utf-8"],
    ["no Content-Type", null],
  ])("%s is accepted", async (_name, contentType) => {
    const id = `url-type-${crypto.randomUUID()}`;
    expect((await beacon(batch(id), { contentType })).status).toBe(202);
    expect((await drainQueue()).map((e) => e.eventId)).toEqual([id]);
  });

  const refused: { name: string; send: () => Promise<Response>; status: number; code: string }[] = [
    {
      name: "a form encoding",
      send: () => beacon(batch("no-1"), { contentType: "application/x-www-form-urlencoded" }),
      status: 415,
      code: "unsupported_media_type",
    },
    {
      name: "multipart",
      send: () => beacon(batch("no-1"), { contentType: "multipart/form-data; boundary=x" }),
      status: 415,
      code: "unsupported_media_type",
    },
    {
      name: "a charset other than UTF-8",
      send: () => beacon(batch("no-1"), { contentType: "text/plain; charset=iso-8859-1" }),
      status: 415,
      code: "unsupported_media_type",
    },
    {
      name: "the key in the URL and in Authorization",
      send: () => beacon(batch("no-1"), { headers: { Authorization: `Bearer ${tenant.sdkKey}` } }),
      status: 400,
      code: "invalid_request",
    },
    {
      name: "the key twice in the URL",
      send: () => beacon(batch("no-1"), { query: `key=${tenant.sdkKey}&key=${tenant.sdkKey}` }),
      status: 400,
      code: "invalid_request",
    },
    {
      name: "an empty key",
      send: () => beacon(batch("no-1"), { query: "key=" }),
      status: 401,
      code: "unauthorized",
    },
    {
      name: "an unknown key",
      send: () => beacon(batch("no-1"), { key: "lp_pk_doesNotExist00000000000000000" }),
      status: 401,
      code: "unauthorized",
    },
    {
      name: "malformed JSON",
      send: () => beacon('{"events": ['),
      status: 400,
      code: "invalid_json",
    },
    {
      name: "501 events",
      send: () => beacon(batch(...Array.from({ length: 501 }, (_, i) => `no-${i}`))),
      status: 400,
      code: "too_many_events",
    },
    {
      name: "a body over 500 KB",
      send: () =>
        beacon(
          JSON.stringify({
            events: [{ eventId: "no-1", name: "x", properties: { s: "x".repeat(600 * 1024) } }],
          }),
        ),
      status: 413,
      code: "payload_too_large",
    },
    {
      name: "every event invalid",
      send: () => beacon(JSON.stringify({ events: [{ eventId: "no-1" }] })),
      status: 400,
      code: "invalid_events",
    },
  ];
  test.each(refused)("$name → $status $code, nothing enqueued", async ({ send, status, code }) => {
    await expectError(await send(), status, code);
    expect(await drainQueue()).toEqual([]);
  });

  test("a secret API key is never accepted in the URL, and the answer says to rotate it", async () => {
    const apiKey = "lp_live_aVeryRealLookingSecret0000000000000";
    const message = await expectError(await beacon(batch("no-api"), { key: apiKey }), 401, "unauthorized");
    expect(message).toMatch(/never accepted in a URL.*rotate/s);
    expect(message).not.toContain(apiKey);
    expect(await drainQueue()).toEqual([]);
  });

  test("no log line holds a key sent in the URL", async () => {
    const t = await createTenant(stack.db);
    expect((await beacon(batch("log-1"), { key: t.sdkKey })).status).toBe(202);
    await beacon("{", { key: t.sdkKey });
    await beacon(batch("log-2"), { key: t.sdkKey, contentType: "application/x-www-form-urlencoded" });
    await beacon(batch("log-3"), { key: "lp_live_aVeryRealLookingSecret0000000000000" });
    // The accepted request was logged (so logs are being read), and nothing logged carries a key.
    await waitFor(async () =>
      stack.logs.some((l) => l.includes("events accepted") && l.includes(t.projectId)) ? true : undefined,
    );
    expect(stack.logs.filter((l) => l.includes(t.sdkKey) || l.includes("aVeryRealLookingSecret"))).toEqual(
      [],
    );
  });
});
