import path from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { unstable_getMiniflareWorkerOptions } from "wrangler";
import { ROOT } from "../../../scripts/local/bundle";
import { bearer, createApiTenant } from "../../support/apiTenant";
import { type Stack, startStack } from "../../support/stack";

// The per-key limit (API_RATE_LIMIT_PER_MINUTE) is a token bucket (GCRA) per isolate: a key earns one
// request every 60 s / limit and saves up at most `limit`; it gives the RateLimit-* headers. Time is driven
// through the test clock (X-Layers-Test-Now). Across isolates, Cloudflare's rate-limit binding
// (API_RATE_LIMITER) holds the key to the same limit per 60 s; its refusal is tested on its own below.

const LIMIT = 3; // one request earned every 20 s

let stack: Stack;
beforeAll(async () => {
  stack = await startStack({ consumer: "recorder", apiVars: { API_RATE_LIMIT_PER_MINUTE: String(LIMIT) } });
});
afterAll(() => stack?.dispose());

interface Answer {
  status: number;
  limit: number;
  remaining: number;
  reset: number;
  retryAfter: number | null;
}

/** One GET by this key at this instant; the rate-limit headers as numbers. */
async function hit(secret: string, at: number): Promise<Answer> {
  const response = await stack.api("/v1/projects", {
    headers: bearer(secret, { "X-Layers-Test-Now": new Date(at).toISOString() }),
  });
  await response.arrayBuffer();
  const retryAfter = response.headers.get("Retry-After");
  return {
    status: response.status,
    limit: Number(response.headers.get("RateLimit-Limit")),
    remaining: Number(response.headers.get("RateLimit-Remaining")),
    reset: Number(response.headers.get("RateLimit-Reset")),
    retryAfter: retryAfter === null ? null : Number(retryAfter),
  };
}

async function burst(secret: string, at: number, count: number): Promise<Answer[]> {
  const answers: Answer[] = [];
  for (let i = 0; i < count; i++) answers.push(await hit(secret, at));
  return answers;
}

const passed = (answers: Answer[]) => answers.filter((a) => a.status === 200).length;

describe("API rate limit (GCRA)", () => {
  test("a burst straddling a minute boundary cannot pass more than the limit", async () => {
    const { secret } = await createApiTenant(stack.db);
    const boundary = Date.parse("2026-11-23T12:01:00.000Z");
    const before = await burst(secret, boundary - 100, LIMIT + 2);
    const after = await burst(secret, boundary + 100, LIMIT + 2);
    // A fixed window per minute would let LIMIT through on each side: 2 × LIMIT in 200 ms.
    expect(passed(before)).toBe(LIMIT);
    expect(passed(after)).toBe(0);
    expect(after.every((a) => a.status === 429 && a.remaining === 0 && a.limit === LIMIT)).toBe(true);

    // Over any stretch of time, what passes is the saved-up limit plus what the stretch earned.
    const { secret: steady } = await createApiTenant(stack.db);
    const start = Date.parse("2026-11-23T13:00:59.000Z");
    let total = 0;
    for (let second = 0; second < 120; second += 5)
      total += passed(await burst(steady, start + second * 1000, 2));
    // 120 s at one request per 20 s earns 5 (the last at 115 s has earned only 5 of 6) + 3 saved up.
    expect(total).toBe(LIMIT + 5);
  });

  test("RateLimit-Remaining is exactly what can pass now", async () => {
    const { secret } = await createApiTenant(stack.db);
    const t = Date.parse("2026-11-23T14:00:00.000Z");
    const first = await hit(secret, t);
    expect(first).toMatchObject({ status: 200, limit: LIMIT, remaining: LIMIT - 1, retryAfter: null });
    const rest = await burst(secret, t, first.remaining + 1);
    expect(rest.map((a) => a.status)).toEqual([...Array(first.remaining).fill(200), 429]);
    // Half an interval later nothing new is earned; a full one later, exactly one.
    expect(await hit(secret, t + 10_000)).toMatchObject({ status: 429, remaining: 0 });
    const earned = await burst(secret, t + 20_000, 2);
    expect(earned.map((a) => [a.status, a.remaining])).toEqual([
      [200, 0],
      [429, 0],
    ]);
  });

  test("Retry-After is the wait for the next request; RateLimit-Reset the wait for the whole limit", async () => {
    const { secret } = await createApiTenant(stack.db);
    const t = Date.parse("2026-11-23T15:00:00.500Z");
    const answers = await burst(secret, t, LIMIT);
    expect(answers.map((a) => a.reset)).toEqual([20, 40, 60]);
    const refused = await hit(secret, t + 7_300);
    expect(refused.status).toBe(429);
    // 12.7 s until the first saved request is earned back: rounded up, never early.
    expect(refused.retryAfter).toBe(13);
    expect(refused.reset).toBe(53);
    expect((await hit(secret, t + 7_300 + (refused.retryAfter! - 1) * 1000)).status).toBe(429);
    const retried = await hit(secret, t + 7_300 + refused.retryAfter! * 1000);
    expect(retried).toMatchObject({ status: 200, remaining: 0 });

    // After RateLimit-Reset seconds of silence the whole limit is there again, and not a second before.
    const quietFrom = t + 7_300 + refused.retryAfter! * 1000;
    const { secret: other } = await createApiTenant(stack.db);
    const otherBurst = await burst(other, quietFrom, LIMIT);
    const reset = otherBurst.at(-1)!.reset;
    expect(reset).toBe(60);
    expect(passed(await burst(other, quietFrom + (reset - 1) * 1000, LIMIT))).toBe(LIMIT - 1);
    const { secret: third } = await createApiTenant(stack.db);
    const thirdBurst = await burst(third, quietFrom, LIMIT);
    expect(passed(await burst(third, quietFrom + thirdBurst.at(-1)!.reset * 1000, LIMIT))).toBe(LIMIT);
  });
});

describe("API rate limit across isolates (the rate-limit binding)", () => {
  test("wrangler.toml gives the binding the limit the headers announce, over the same 60 s", () => {
    const { workerOptions } = unstable_getMiniflareWorkerOptions(
      path.join(ROOT, "workers/api/wrangler.toml"),
    );
    const bindings = (workerOptions.bindings ?? {}) as Record<string, unknown>;
    const ratelimits = (workerOptions as { ratelimits?: Record<string, { simple: object }> }).ratelimits;
    expect(ratelimits?.API_RATE_LIMITER?.simple).toEqual({
      limit: Number(bindings.API_RATE_LIMIT_PER_MINUTE),
      period: 60,
    });
  });

  test("when other isolates spent the key's limit: 429, nothing remaining, Retry-After a whole period", async () => {
    // The binding allows 2 a minute while this isolate's bucket would allow 600: as if other isolates had
    // already spent the rest of the key's limit.
    const shared = await startStack({ consumer: "recorder", apiRateLimit: 2 });
    try {
      // The binding counts in fixed windows on the minute (as Miniflare simulates it): three requests that
      // straddle a minute boundary meet two windows, so such a try is repeated with a fresh key.
      const window = () => Math.floor(Date.now() / 60_000);
      let answers: Response[] = [];
      for (let attempt = 0; attempt < 3; attempt++) {
        const { secret } = await createApiTenant(shared.db);
        const first = window();
        answers = [];
        for (let i = 0; i < 3; i++) {
          const response = await shared.api("/v1/projects", { headers: bearer(secret) });
          await response.arrayBuffer();
          answers.push(response);
        }
        if (window() === first) break;
      }
      expect(answers.map((r) => r.status)).toEqual([200, 200, 429]);
      const refused = answers[2]!;
      expect(refused.headers.get("RateLimit-Limit")).toBe("600");
      expect(refused.headers.get("RateLimit-Remaining")).toBe("0");
      expect(refused.headers.get("Retry-After")).toBe("60");
      expect(refused.headers.get("RateLimit-Reset")).toBe("60");
      // Counted per key: another key of the same org is unaffected.
      const other = await createApiTenant(shared.db);
      const fresh = await shared.api("/v1/projects", { headers: bearer(other.secret) });
      expect(fresh.status).toBe(200);
      expect(fresh.headers.get("RateLimit-Remaining")).toBe("599");
    } finally {
      await shared.dispose();
    }
  });
});
