// What a dead letter may keep. Queue messages carry, for the ad platforms only, values that are never
// stored: device advertising ids, Apple AdServices tokens, the platforms' own phone hashes, the raw
// User-Agent and the page URL. A dead letter is storage, so it keeps none of them: a redriven event is
// stored exactly as before, and relayed without them.

const TRANSIENT_EVENT_FIELDS = new Set([
  "adIds",
  "madid",
  "adServicesToken",
  "relayPhone",
  "userAgent",
  "pageUrl",
]);

const isRecord = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);

// fromEntries defines own properties, so a key named "__proto__" stays a plain key.
const without = (o: Record<string, unknown>, drop: (key: string) => boolean) =>
  Object.fromEntries(Object.entries(o).filter(([key]) => !drop(key)));

/**
 * A queue message (events or relay batch) without the transient fields of its events. The fields are
 * removed where they ride (each event's top level), never inside `properties`, which is stored as sent.
 * A body of no known shape (a malformed message) loses them at any depth: what it holds cannot be known.
 */
export function withoutTransientFields(body: unknown): unknown {
  if (isRecord(body) && Array.isArray(body.events) && body.events.every(isRecord)) {
    return {
      ...without(body, () => false),
      events: body.events.map((e) => without(e, (key) => TRANSIENT_EVENT_FIELDS.has(key))),
    };
  }
  return deepWithout(body);
}

function deepWithout(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(deepWithout);
  if (!isRecord(value)) return value;
  return Object.fromEntries(
    Object.entries(value)
      .filter(([key]) => !TRANSIENT_EVENT_FIELDS.has(key) && key !== "idfa" && key !== "gaid")
      .map(([key, v]) => [key, deepWithout(v)]),
  );
}
