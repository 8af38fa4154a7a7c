import { DurableObject } from "cloudflare:workers";

export interface RateLimitResult {
  allowed: boolean;
  limit: number;
  remaining: number;
  /** Seconds until the window resets. */
  resetSeconds: number;
}

/**
 * One Durable Object per API key (named by the key's hash): a fixed-window counter that every isolate in
 * every location consults, so the limit holds however many isolates serve the key. An in-memory counter
 * is enough: if the object is evicted the window restarts, which only ever errs in the caller's favour.
 */
export class ApiRateLimiter extends DurableObject {
  #windowStart = 0;
  #count = 0;

  hit(limit: number, windowSeconds: number, nowMs: number): RateLimitResult {
    const windowMs = windowSeconds * 1000;
    const windowStart = nowMs - (nowMs % windowMs);
    if (windowStart !== this.#windowStart) {
      this.#windowStart = windowStart;
      this.#count = 0;
    }
    const allowed = this.#count < limit;
    if (allowed) this.#count += 1;
    return {
      allowed,
      limit,
      remaining: Math.max(0, limit - this.#count),
      resetSeconds: Math.max(1, Math.ceil((windowStart + windowMs - nowMs) / 1000)),
    };
  }
}
