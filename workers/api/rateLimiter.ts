import { DurableObject } from "cloudflare:workers";

export interface RateLimitResult {
  allowed: boolean;
  limit: number;
  /** Requests the key can make at once, right now, after this one. */
  remaining: number;
  /** Seconds until the key has its whole limit again, if it sends nothing meanwhile. */
  resetSeconds: number;
  /** Seconds until the next request can pass (0 when this one passed). */
  retryAfterSeconds: number;
}

/** Float slack for intervals like 60 000 / 7 ms, so rounding never costs or gives a request. */
const EPSILON_MS = 1e-6;

/**
 * One Durable Object per API key, consulted by every isolate in every location, so the limit holds however
 * many isolates serve the key. GCRA (generic cell rate algorithm), a token bucket kept as one timestamp:
 * the key earns a request every `period / limit` and may save up at most `limit`. Unlike a fixed window,
 * no clock boundary refills it, so a burst just before a minute ends and another just after it cannot pass
 * more than `limit` plus what the time in between earned. The state lives in memory: if the object is
 * evicted the key starts with a full bucket, which only ever errs in the caller's favour.
 */
export class ApiRateLimiter extends DurableObject {
  /** Theoretical arrival time: when the key's bucket is full again (ms). */
  #fullAt = 0;

  hit(limit: number, periodSeconds: number, nowMs: number): RateLimitResult {
    const periodMs = periodSeconds * 1000;
    const intervalMs = periodMs / limit;
    // How much of the period the key has used up: each request adds one interval, time pays it back.
    const usedMs = Math.max(0, this.#fullAt - nowMs);
    const allowed = usedMs + intervalMs <= periodMs + EPSILON_MS;
    const usedAfterMs = allowed ? usedMs + intervalMs : usedMs;
    if (allowed) this.#fullAt = nowMs + usedAfterMs;
    return {
      allowed,
      limit,
      remaining: Math.max(0, Math.floor((periodMs - usedAfterMs) / intervalMs + EPSILON_MS)),
      resetSeconds: seconds(usedAfterMs),
      retryAfterSeconds: allowed ? 0 : Math.max(1, seconds(usedMs + intervalMs - periodMs)),
    };
  }
}

/** Whole seconds, rounded up: waiting that long is always enough. */
function seconds(ms: number): number {
  return Math.ceil(ms / 1000 - EPSILON_MS / 1000);
}
