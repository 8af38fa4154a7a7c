import { describe, expect, it } from "vitest";
import { parseBatch } from "../../functions/ingest/parseBatch";
import { ApiError, type ErrorCode } from "../../shared/errors";

function failure(body: string): ApiError {
  try {
    parseBatch(body);
  } catch (error) {
    if (error instanceof ApiError) return error;
    throw new Error(`expected an ApiError, got ${String(error)}`);
  }
  throw new Error(`expected parseBatch(${body.slice(0, 40)}…) to throw`);
}

const events = (n: number) =>
  Array.from({ length: n }, (_, i) => ({ name: "screen_view", eventId: `e-${i}` }));

describe("parseBatch: the whole request is refused", () => {
  it.each<[string, string, ErrorCode, number]>([
    ["malformed JSON", '{"events": [', "invalid_json", 400],
    ["not JSON at all", "name=signup", "invalid_json", 400],
    ["an empty body", "", "invalid_json", 400],
    ["a JSON array", '[{"name":"a"}]', "invalid_body", 400],
    ["a JSON string", '"hello"', "invalid_body", 400],
    ["a JSON number", "42", "invalid_body", 400],
    ["JSON null", "null", "invalid_body", 400],
    ["events that is not an array", '{"events":"x"}', "invalid_body", 400],
    ["events that is an object", '{"events":{"name":"a"}}', "invalid_body", 400],
    ["an empty events array", '{"events":[]}', "invalid_body", 400],
    ["a sentAt that is not a time", '{"sentAt":"yesterday","events":[{"name":"a"}]}', "invalid_body", 400],
    ["501 events", JSON.stringify({ events: events(501) }), "too_many_events", 400],
  ])("%s → %s (%i)", (_label, body, code, status) => {
    const error = failure(body);
    expect(error.code).toBe(code);
    expect(error.status).toBe(status);
    expect(error.message.length).toBeGreaterThan(0);
  });

  it("the too_many_events message states the limit and the count sent", () => {
    const error = failure(JSON.stringify({ events: events(501) }));
    expect(error.message).toContain("500");
    expect(error.message).toContain("501");
  });

  it("an invalid envelope says which field is wrong", () => {
    const error = failure('{"events":"x"}');
    expect(error.details).toEqual(expect.arrayContaining([expect.objectContaining({ path: "events" })]));
  });
});

describe("parseBatch: accepted bodies", () => {
  it("exactly 500 events are accepted, in order", () => {
    const input = events(500);
    const parsed = parseBatch(JSON.stringify({ events: input }));
    expect(parsed.events).toHaveLength(500);
    expect(parsed.events).toEqual(input);
  });

  it("a bare single event object is accepted as one event", () => {
    const event = { name: "signup", userId: "u1", properties: { plan: "pro" } };
    const parsed = parseBatch(JSON.stringify(event));
    expect(parsed.events).toEqual([event]);
    expect(parsed.sentAt).toBeUndefined();
  });

  it.each([
    ["an ISO time", "2024-05-01T12:00:00.000Z"],
    ["an ISO time with an offset", "2024-05-01T14:00:00+02:00"],
    ["epoch milliseconds", 1_714_564_800_000],
  ])("sentAt as %s is carried through", (_label, sentAt) => {
    const parsed = parseBatch(JSON.stringify({ sentAt, events: [{ name: "a" }] }));
    expect(parsed.sentAt).toBe(sentAt);
  });

  it("no sentAt → undefined", () => {
    expect(parseBatch('{"events":[{"name":"a"}]}').sentAt).toBeUndefined();
  });

  it("events are passed on raw: judging each one is normalizeEvents' job", () => {
    const parsed = parseBatch('{"events":[{"name":"ok"}, 7, {"nope":true}]}');
    expect(parsed.events).toEqual([{ name: "ok" }, 7, { nope: true }]);
  });
});
