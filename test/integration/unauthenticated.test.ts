import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { DEMO, seedDemo } from "../../scripts/local/seed";
import { api } from "../support/api";
import { bearer, createApiTenant } from "../support/apiTenant";
import type { Org } from "../support/apiTypes";
import { type Stack, startStack, waitFor } from "../support/stack";
import { createTenant } from "../support/tenant";

// Traffic without a valid key must cost next to nothing, on the partner API and on ingest alike: a key of
// the wrong shape is refused before any lookup; a well-formed unknown key is looked up in the database once
// per isolate and then remembered for a few seconds; neither ever reaches a rate limiter (which a real key
// meets only after its lookup). The cost is counted where it is paid: database connections opened through
// the WebSocket bridge, queries sent over SQL-over-HTTP (the API's key lookups and reads), and the rate
// limiters' answers.

const API_LIMIT = 3;
const INGEST_LIMIT = 2;
const BURST = 20;

let stack: Stack;
beforeAll(async () => {
  stack = await startStack({
    consumer: "recorder",
    apiVars: { API_RATE_LIMIT_PER_MINUTE: String(API_LIMIT), API_KEY_CACHE_TTL_SECONDS: "5" },
    ingestVars: { SDK_KEY_CACHE_TTL_SECONDS: "5" },
    ingestRateLimit: INGEST_LIMIT,
  });
  await seedDemo(stack.db);
});
afterAll(() => stack?.dispose());

/** Runs `send` `times` times, one after another; the statuses and the database calls it cost. */
async function burst(times: number, send: (i: number) => Promise<Response>) {
  const calls = () => stack.bridge.connectionsOpened + stack.neonHttp.requestsServed;
  const before = calls();
  const statuses: number[] = [];
  const rateLimitHeaders: (string | null)[] = [];
  for (let i = 0; i < times; i++) {
    const response = await send(i);
    statuses.push(response.status);
    rateLimitHeaders.push(response.headers.get("RateLimit-Limit"));
    await response.arrayBuffer();
  }
  return { statuses, rateLimitHeaders, databaseCalls: calls() - before };
}

/** Well-formed, never issued: 32 letters and digits after the prefix. */
const unknownKey = (prefix: string, tag: string) => `${prefix}${tag}${"Q".repeat(32 - tag.length)}`;

const MALFORMED_API_KEYS = [
  "nope",
  `lp_live_${"A".repeat(31)}`,
  `lp_live_${"A".repeat(33)}`,
  `lp_live_${"A".repeat(31)}_`,
  `lp_live_${"A".repeat(31)}é`,
  `lp_prod_${"A".repeat(32)}`,
  `lp_pk_${"A".repeat(32)}`,
  `lp_live_${"A".repeat(16)}`,
];
const MALFORMED_SDK_KEYS = [
  "nope",
  `lp_pk_${"A".repeat(31)}`,
  `lp_pk_${"A".repeat(33)}`,
  `lp_pk_${"A".repeat(31)}-`,
  `lp_live_${"A".repeat(32)}`,
  "lp_pk_doesNotExist000000000000000",
];

describe("partner API: requests without a valid key", () => {
  test("a malformed key costs no database call and no rate-limit call", async () => {
    const result = await burst(BURST, (i) =>
      stack.api("/v1/projects", { headers: bearer(MALFORMED_API_KEYS[i % MALFORMED_API_KEYS.length]!) }),
    );
    expect(result.statuses).toEqual(Array(BURST).fill(401));
    expect(result.databaseCalls).toBe(0);
    expect(result.rateLimitHeaders).toEqual(Array(BURST).fill(null));
  });

  test("a well-formed unknown key is looked up once, then remembered; it never meets the rate limiter", async () => {
    const key = unknownKey("lp_live_", "unknownA");
    const result = await burst(BURST, () => stack.api("/v1/projects", { headers: bearer(key) }));
    // More than the limit of 3, and still 401, never 429: no rate-limit object was consulted for it.
    expect(result.statuses).toEqual(Array(BURST).fill(401));
    expect(result.rateLimitHeaders).toEqual(Array(BURST).fill(null));
    expect(result.databaseCalls).toBe(1);

    // Another unknown key is its own lookup; a real key right after is unaffected and rate-limited as usual.
    const other = await burst(3, () =>
      stack.api("/v1/projects", { headers: bearer(unknownKey("lp_test_", "unknownB")) }),
    );
    expect(other.statuses).toEqual([401, 401, 401]);
    expect(other.databaseCalls).toBe(1);
    const owner = await createApiTenant(stack.db);
    const real = await stack.api("/v1/projects", { headers: bearer(owner.secret) });
    expect(real.status).toBe(200);
    expect(real.headers.get("RateLimit-Limit")).toBe(String(API_LIMIT));
    expect(real.headers.get("RateLimit-Remaining")).toBe(String(API_LIMIT - 1));
    // Its deferred request-log write is done before the next test counts connections.
    const requestId = real.headers.get("X-Request-Id")!;
    await waitFor(() =>
      stack.db
        .selectFrom("request_logs")
        .select("request_id")
        .where("request_id", "=", requestId)
        .executeTakeFirst(),
    );
  });

  test("the local demo key has the accepted shape and works", async () => {
    const response = await api(stack, DEMO.apiKey).get<Org>("/v1/org");
    expect(response.status).toBe(200);
    expect(response.body.id).toBe(DEMO.orgId);
    // Its request-log row is written up to 20 ms after the answer (batched): done before the next test
    // counts database calls.
    const requestId = response.headers.get("X-Request-Id")!;
    await waitFor(() =>
      stack.db
        .selectFrom("request_logs")
        .select("request_id")
        .where("request_id", "=", requestId)
        .executeTakeFirst(),
    );
  });
});

describe("ingest: requests without a valid key", () => {
  const event = { eventId: "never-stored", name: "x" };

  test("a malformed key costs no database call and no rate-limit call", async () => {
    const result = await burst(BURST, (i) =>
      stack.ingest(event, { key: MALFORMED_SDK_KEYS[i % MALFORMED_SDK_KEYS.length]! }),
    );
    // Past the limit of 2 and still 401: the rate limiter was never asked.
    expect(result.statuses).toEqual(Array(BURST).fill(401));
    expect(result.databaseCalls).toBe(0);
  });

  test("a well-formed unknown key is looked up once, then remembered; it never meets the rate limiter", async () => {
    const result = await burst(BURST, () => stack.ingest(event, { key: unknownKey("lp_pk_", "unknownC") }));
    expect(result.statuses).toEqual(Array(BURST).fill(401));
    expect(result.databaseCalls).toBe(1);

    // A real key: looked up once, then cached; the rate limiter counts it (limit 2 per period).
    const tenant = await createTenant(stack.db);
    const real = await burst(INGEST_LIMIT + 1, (i) =>
      stack.ingest({ eventId: `real-${i}`, name: "open" }, { key: tenant.sdkKey }),
    );
    expect(real.statuses).toEqual([...Array(INGEST_LIMIT).fill(202), 429]);
    expect(real.databaseCalls).toBe(1);
  });

  test("the local demo key has the accepted shape and works", async () => {
    const response = await stack.ingest({ eventId: "demo-1", name: "signup" }, { key: DEMO.sdkKey });
    expect(response.status).toBe(202);
  });
});
