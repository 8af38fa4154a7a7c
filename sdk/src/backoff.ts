/** What the SDK needs of time; tests pass a manual one so nothing sleeps. */
export interface Scheduler {
  now(): number;
  setTimeout(run: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

const timers = globalThis as unknown as {
  setTimeout(run: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
};

export const realScheduler: Scheduler = {
  now: () => Date.now(),
  setTimeout: (run, ms) => {
    const handle = timers.setTimeout(run, ms) as { unref?: () => void };
    // Node: a pending retry must not keep a finished script alive (shutdown() flushes explicitly).
    handle?.unref?.();
    return handle;
  },
  clearTimeout: (handle) => timers.clearTimeout(handle),
};

export interface RetryOptions {
  /** First retry delay in ms (default 1,000). */
  baseMs?: number;
  /** Longest delay between retries in ms (default 300,000 = 5 min). Retries never stop: events stay queued. */
  maxMs?: number;
}

/**
 * Exponential backoff with "equal jitter": attempt n waits between half and all of min(max, base·2^(n−1)),
 * so clients that failed together do not come back together, and no retry comes sooner than half the step.
 */
export function backoffDelay(attempt: number, random: () => number, options: RetryOptions = {}): number {
  const base = options.baseMs ?? 1_000;
  const max = options.maxMs ?? 300_000;
  const step = Math.min(max, base * 2 ** Math.min(attempt - 1, 30));
  return Math.round(step / 2 + (random() * step) / 2);
}

/** Retry-After in seconds or as an HTTP date; null when absent or unreadable. */
export function retryAfterMs(header: string | null | undefined, now: number): number | null {
  if (!header) return null;
  const seconds = Number(header);
  if (Number.isFinite(seconds) && seconds >= 0) return seconds * 1000;
  const at = Date.parse(header);
  return Number.isNaN(at) ? null : Math.max(0, at - now);
}
