import { describe, expect, test } from "vitest";
import { backoffDelay, retryAfterMs } from "../../../sdk/src/backoff";
import { errorAnswer, settle } from "./harness";
import { setup } from "./setup";

describe("SDK delivery: answers, retries, backoff", () => {
  test("backoff doubles from 1 s up to 5 min, with jitter between half and all of each step", () => {
    const low = (n: number) => backoffDelay(n, () => 0);
    const high = (n: number) => backoffDelay(n, () => 1);
    expect([1, 2, 3, 4].map(high)).toEqual([1_000, 2_000, 4_000, 8_000]);
    expect([1, 2, 3, 4].map(low)).toEqual([500, 1_000, 2_000, 4_000]);
    expect(high(9)).toBe(256_000);
    expect(high(10)).toBe(300_000);
    expect(high(1_000)).toBe(300_000);
    expect(backoffDelay(3, () => 0.5, { baseMs: 100, maxMs: 250 })).toBe(188);
  });

  test("Retry-After is read as seconds or as an HTTP date", () => {
    const now = Date.UTC(2026, 0, 1);
    expect(retryAfterMs("10", now)).toBe(10_000);
    expect(retryAfterMs(new Date(now + 30_000).toUTCString(), now)).toBe(30_000);
    expect(retryAfterMs("soon", now)).toBeNull();
    expect(retryAfterMs(null, now)).toBeNull();
  });

  test("5xx and network errors are retried with backoff, the same event ids and a fresh sentAt", async () => {
    const { layers, ingest, clock, errors } = setup({
      flushAt: 2,
      answer: (_, i) =>
        i === 0
          ? errorAnswer(503, "queue_unavailable")
          : i === 1
            ? "network"
            : { status: 202, body: { accepted: 2, rejected: [] } },
    });
    const ids = [layers.track("a"), layers.track("b")];
    await settle();
    expect(ingest.requests).toHaveLength(1);
    expect(errors[0]).toMatchObject({ code: "queue_unavailable", status: 503, stopped: false });
    // random() = 0.5: attempt 1 waits 750 ms, attempt 2 waits 1,500 ms.
    await clock.advance(749);
    expect(ingest.requests).toHaveLength(1);
    await clock.advance(1);
    expect(ingest.requests).toHaveLength(2);
    expect(errors[1]).toMatchObject({ code: "network_error", stopped: false });
    await clock.advance(1_499);
    expect(ingest.requests).toHaveLength(2);
    await clock.advance(1);
    expect(ingest.requests).toHaveLength(3);
    for (const r of ingest.requests) expect(r.events.map((e) => e.eventId)).toEqual(ids);
    expect(ingest.requests.map((r) => r.sentAt)).toEqual([...new Set(ingest.requests.map((r) => r.sentAt))]);
    // Delivered: nothing more is sent, however long we wait.
    await clock.advance(3_600_000);
    expect(ingest.requests).toHaveLength(3);
  });

  test("explicit flush() during a backoff waits for it too", async () => {
    const { layers, ingest, clock } = setup({
      answer: (_, i) =>
        i === 0 ? errorAnswer(500, "internal_error") : { status: 202, body: { rejected: [] } },
    });
    layers.track("a");
    await layers.flush();
    await layers.flush();
    expect(ingest.requests).toHaveLength(1);
    await clock.advance(750);
    expect(ingest.requests).toHaveLength(2);
  });

  test("a request that hangs is aborted after timeoutMs and retried", async () => {
    const { layers, ingest, clock, errors } = setup({
      timeoutMs: 5_000,
      answer: (_, i) => (i === 0 ? "hang" : { status: 202, body: { rejected: [] } }),
    });
    const id = layers.track("a");
    void layers.flush();
    await settle();
    await clock.advance(5_000);
    expect(errors[0]).toMatchObject({ code: "network_error" });
    await clock.advance(750);
    expect(ingest.ids()).toEqual([id, id]);
  });

  test("429 waits exactly the Retry-After it was given", async () => {
    const { layers, ingest, clock, errors } = setup({
      answer: (_, i) =>
        i === 0
          ? errorAnswer(429, "rate_limited", { headers: { "Retry-After": "10" } })
          : { status: 202, body: { rejected: [] } },
    });
    layers.track("a");
    await layers.flush();
    expect(errors[0]).toMatchObject({ code: "rate_limited", status: 429, stopped: false });
    await clock.advance(9_999);
    expect(ingest.requests).toHaveLength(1);
    await clock.advance(1);
    expect(ingest.requests).toHaveLength(2);
  });

  test("401 stops sending and says why; the queue is kept and flush() tries again", async () => {
    let keyValid = false;
    const { layers, ingest, clock, errors, rejected } = setup({
      flushAt: 1,
      answer: (r) =>
        keyValid
          ? { status: 202, body: { accepted: r.events.length, rejected: [] } }
          : errorAnswer(401, "unauthorized"),
    });
    const a = layers.track("a");
    await settle();
    expect(errors).toEqual([
      { code: "unauthorized", message: "unauthorized (test)", status: 401, stopped: true },
    ]);
    const b = layers.track("b");
    await clock.advance(24 * 3_600_000);
    expect(ingest.requests).toHaveLength(1); // stopped: no retries, no new sends
    expect(rejected).toEqual([]);
    keyValid = true; // e.g. the key was restored
    await layers.flush();
    expect(ingest.requests.at(-1)!.events.map((e) => e.eventId)).toEqual([a, b]);
  });

  test("403 project_archived and 404 stop the same way", async () => {
    for (const [status, code] of [
      [403, "project_archived"],
      [404, "not_found"],
    ] as const) {
      const { layers, ingest, clock, errors } = setup({ answer: () => errorAnswer(status, code) });
      layers.track("a");
      await layers.flush();
      await clock.advance(3_600_000);
      expect(ingest.requests).toHaveLength(1);
      expect(errors).toEqual([expect.objectContaining({ code, status, stopped: true })]);
    }
  });

  test("per-event rejections in a 202 are reported with their event and dropped; the rest is done", async () => {
    const { layers, ingest, clock, rejected } = setup({
      flushAt: 3,
      answer: () => ({
        status: 202,
        body: { accepted: 2, rejected: [{ index: 1, code: "timestamp_too_old", message: "too old" }] },
      }),
    });
    layers.track("a");
    const b = layers.track("b");
    layers.track("c");
    await settle();
    expect(rejected).toEqual([
      {
        event: expect.objectContaining({ eventId: b, name: "b" }),
        rejection: { code: "timestamp_too_old", message: "too old" },
      },
    ]);
    await clock.advance(3_600_000);
    expect(ingest.requests).toHaveLength(1);
  });

  test("400 invalid_events reports each event's reason and drops the batch", async () => {
    const { layers, ingest, clock, rejected } = setup({
      answer: () => ({
        status: 400,
        body: {
          error: {
            code: "invalid_events",
            message: "No event in the request is valid.",
            details: {
              rejected: [
                { index: 0, code: "invalid_event", message: "phoneCountry: bad" },
                { index: 1, code: "timestamp_too_old", message: "old" },
              ],
            },
          },
        },
      }),
    });
    layers.track("a");
    layers.track("b");
    await layers.flush();
    expect(rejected.map((r) => [r.event.name, r.rejection.code])).toEqual([
      ["a", "invalid_event"],
      ["b", "timestamp_too_old"],
    ]);
    await clock.advance(3_600_000);
    await layers.flush();
    expect(ingest.requests).toHaveLength(1);
  });

  test("413 splits the batch until it fits; every event is delivered once", async () => {
    // An ingest that takes at most 3 events per request (as if each were near the body limit).
    const { layers, ingest } = setup({
      flushAt: 100,
      answer: (r) =>
        r.events.length > 3
          ? errorAnswer(413, "payload_too_large")
          : { status: 202, body: { accepted: r.events.length, rejected: [] } },
    });
    const ids = Array.from({ length: 10 }, (_, i) => layers.track(`e${i}`));
    await layers.flush();
    const delivered = ingest.requests
      .filter((r) => r.events.length <= 3)
      .flatMap((r) => r.events.map((e) => e.eventId));
    expect(delivered).toEqual(ids);
    expect(ingest.requests.map((r) => r.events.length)).toEqual([10, 5, 3, 2, 5, 3, 2]);
  });

  test("a single event answered 413 is rejected rather than retried forever", async () => {
    const { layers, ingest, clock, rejected } = setup({
      answer: () => errorAnswer(413, "payload_too_large"),
    });
    layers.track("a");
    await layers.flush();
    expect(rejected.map((r) => r.rejection.code)).toEqual(["payload_too_large"]);
    await clock.advance(3_600_000);
    expect(ingest.requests).toHaveLength(1);
  });

  test("a failure in a later batch keeps the earlier batches' success and order", async () => {
    const { layers, ingest, clock } = setup({
      flushAt: 500,
      maxQueueSize: 5_000,
      answer: (r, i) =>
        i === 1
          ? errorAnswer(503, "database_unavailable")
          : { status: 202, body: { accepted: r.events.length, rejected: [] } },
    });
    await layers.ready;
    const ids = Array.from({ length: 700 }, (_, i) => layers.track("t", { i }));
    await layers.flush();
    await clock.advance(750);
    const delivered = ingest.requests
      .filter((_, i) => i !== 1)
      .flatMap((r) => r.events.map((e) => e.eventId));
    expect(delivered).toEqual(ids);
  });

  test("a throwing onError callback does not stop delivery", async () => {
    const { layers, ingest, clock } = setup({
      onError: () => {
        throw new Error("partner bug");
      },
      answer: (_, i) =>
        i === 0 ? errorAnswer(503, "queue_unavailable") : { status: 202, body: { rejected: [] } },
    });
    layers.track("a");
    await layers.flush();
    await clock.advance(750);
    expect(ingest.requests).toHaveLength(2);
  });
});
