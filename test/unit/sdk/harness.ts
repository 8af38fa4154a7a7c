import type { FetchInit, FetchLike, FetchResponse, Scheduler } from "../../../sdk/src";

// A clock the test moves by hand (timers fire only on advance) and an ingest double that records every
// request and answers what the test scripts: no test here sleeps or opens a socket.

export const KEY = "lp_pk_unitTestKey000000000000000000000";
export const ENDPOINT = "https://ingest.test";

/** Lets pending promise chains (fetch answers, storage writes) run to their end. */
export async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve));
}

export interface ManualClock extends Scheduler {
  advance(ms: number): Promise<void>;
  /** Delays of the timers still pending, from now. */
  pending(): number[];
}

export function manualClock(start = Date.UTC(2026, 10, 26, 12)): ManualClock {
  let now = start;
  let seq = 0;
  const timers = new Map<number, { at: number; run: () => void }>();
  return {
    now: () => now,
    setTimeout(run, ms) {
      seq += 1;
      timers.set(seq, { at: now + ms, run });
      return seq;
    },
    clearTimeout(handle) {
      timers.delete(handle as number);
    },
    async advance(ms) {
      const target = now + ms;
      for (;;) {
        const next = [...timers].filter(([, t]) => t.at <= target).sort((a, b) => a[1].at - b[1].at)[0];
        if (!next) break;
        timers.delete(next[0]);
        now = Math.max(now, next[1].at);
        next[1].run();
        await settle();
      }
      now = target;
      await settle();
    },
    pending: () => [...timers.values()].map((t) => t.at - now).sort((a, b) => a - b),
  };
}

export interface SentEvent {
  eventId: string;
  name: string;
  timestamp: number;
  [field: string]: unknown;
}
export interface Sent {
  url: string;
  init: FetchInit;
  bodyBytes: number;
  sentAt: number;
  events: SentEvent[];
}
export interface Answer {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
}

/** Answers 202 with every event accepted unless `answer` says otherwise; "network" throws like fetch does. */
export function ingestDouble(answer: (request: Sent, index: number) => Answer | "network" | "hang" = accept) {
  const requests: Sent[] = [];
  const fetch: FetchLike = async (url, init) => {
    const parsed = JSON.parse(init.body) as { sentAt: number; events: SentEvent[] };
    const request: Sent = {
      url,
      init,
      bodyBytes: Buffer.byteLength(init.body),
      sentAt: parsed.sentAt,
      events: parsed.events,
    };
    requests.push(request);
    const a = answer(request, requests.length - 1);
    if (a === "network") throw new TypeError("fetch failed");
    if (a === "hang") {
      return new Promise<FetchResponse>((_, reject) => {
        (init.signal as AbortSignal).addEventListener("abort", () => reject(new Error("aborted")));
      });
    }
    const headers = new Headers(a.headers);
    return { status: a.status, headers, text: async () => JSON.stringify(a.body ?? {}) };
  };
  return {
    fetch,
    requests,
    ids: () => requests.flatMap((r) => r.events.map((e) => e.eventId)),
  };
}

export function accept(request: Sent): Answer {
  return { status: 202, body: { accepted: request.events.length, rejected: [] } };
}

export function errorAnswer(status: number, code: string, extra: Partial<Answer> = {}): Answer {
  return {
    status,
    body: { error: { type: "x", code, message: `${code} (test)`, requestId: "req_t" } },
    ...extra,
  };
}
