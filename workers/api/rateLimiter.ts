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
 * The per-key token buckets of one isolate. GCRA (generic cell rate algorithm), a token bucket kept as one
 * timestamp per key: the key earns a request every `period / limit` and may save up at most `limit`. Unlike
 * a fixed window, no clock boundary refills it, so a burst just before a minute ends and another just after
 * it cannot pass more than `limit` plus what the time in between earned. It answers in memory, with no call
 * to make, and gives the exact RateLimit-* figures for the traffic this isolate sees; across isolates and
 * locations Cloudflare's rate-limit binding holds the key to the same limit (middleware.ts). At most
 * `maxKeys` keys are tracked (the least recently seen goes first); a key dropped, or an isolate recycled,
 * starts with a full bucket, which only ever errs in the caller's favour, and the binding still counts.
 */
export class IsolateRateLimits {
  /** Per key: theoretical arrival time, when its bucket is full again (ms). */
  readonly #fullAt = new Map<string, number>();

  constructor(private readonly maxKeys = 10_000) {}

  hit(key: string, limit: number, periodSeconds: number, nowMs: number): RateLimitResult {
    const periodMs = periodSeconds * 1000;
    const intervalMs = periodMs / limit;
    // How much of the period the key has used up: each request adds one interval, time pays it back.
    const usedMs = Math.max(0, (this.#fullAt.get(key) ?? 0) - nowMs);
    const allowed = usedMs + intervalMs <= periodMs + EPSILON_MS;
    const usedAfterMs = allowed ? usedMs + intervalMs : usedMs;
    // Re-inserting moves the key to the end: Map order is insertion order, so the first key is the oldest.
    this.#fullAt.delete(key);
    if (this.#fullAt.size >= this.maxKeys) {
      const oldest = this.#fullAt.keys().next();
      if (!oldest.done) this.#fullAt.delete(oldest.value);
    }
    this.#fullAt.set(key, nowMs + usedAfterMs);
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
