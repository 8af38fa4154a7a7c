import { DESTINATION_KINDS } from "../destinations";
import type { EventsMessage } from "./queue";
import type { RelayMessage } from "./relay";
import { RELAY_MAX_EVENTS_PER_BATCH } from "./relay";

// The consumers' check of a queue message. Every message on our queues was written by our own code from
// values already validated (the SDK batch at the edge, the stored events at the consumer; a replayed dead
// letter is validated in full by functions/deadLetters/tend.ts before it is sent back), so a consumer needs
// to know only that the body is a message of this version and shape, not to re-validate every field of
// every event: that full pass cost 100–200 ms of a relay invocation. What still gets through (a field of
// the wrong type inside an event) is caught where it matters: the database refuses it as data and the
// event alone is dead-lettered (persistIsolating), a platform refuses it and the batch is dead-lettered.
// The full zod schemas (queue.ts, relay.ts) remain the contract, and the producers' tests check their
// output against them.

export type ShapeCheck<T> = { ok: true; message: T } | { ok: false; issues: string[] };

const ISO_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z$/;

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);
const isId = (v: unknown) => typeof v === "string" && v.length > 0 && v.length <= 256;
const isTime = (v: unknown) => typeof v === "string" && ISO_UTC.test(v) && !Number.isNaN(Date.parse(v));

/** The checks every event of both queues gets: what keys, counts and joins rely on. */
function eventIssues(events: unknown[], max: number): string[] {
  if (events.length === 0) return ["events: expected at least one event"];
  if (events.length > max) return [`events: more than ${max} events`];
  for (const [i, e] of events.entries()) {
    if (!isObject(e)) return [`events.${i}: expected an object`];
    if (typeof e.eventId !== "string" || e.eventId.length === 0 || e.eventId.length > 128)
      return [`events.${i}.eventId: expected a string of 1–128 characters`];
    if (typeof e.name !== "string" || e.name.length === 0 || e.name.length > 128)
      return [`events.${i}.name: expected a string of 1–128 characters`];
    if (typeof e.timestamp !== "string") return [`events.${i}.timestamp: expected a string`];
    if (!isObject(e.properties)) return [`events.${i}.properties: expected an object`];
    // The anonymous id is a join key (identity links, the erasure rule), so its type is checked here.
    if (e.anonymousId != null && !isId(e.anonymousId))
      return [`events.${i}.anonymousId: expected a string of 1–256 characters or null`];
  }
  return [];
}

/** An "events" queue message (edge → consumer), checked for version and shape. */
export function checkEventsMessage(body: unknown): ShapeCheck<EventsMessage> {
  if (!isObject(body)) return { ok: false, issues: ["expected an object"] };
  const issues: string[] = [];
  if (body.v !== 1) issues.push("v: expected 1");
  if (!isId(body.orgId)) issues.push("orgId: expected an id");
  if (!isId(body.projectId)) issues.push("projectId: expected an id");
  if (!isTime(body.receivedAt)) issues.push("receivedAt: expected an ISO 8601 UTC time");
  if (body.redrives !== undefined && !(Number.isInteger(body.redrives) && (body.redrives as number) >= 1))
    issues.push("redrives: expected a positive integer");
  if (!Array.isArray(body.events)) issues.push("events: expected an array");
  else issues.push(...eventIssues(body.events, Number.POSITIVE_INFINITY));
  return issues.length > 0 ? { ok: false, issues } : { ok: true, message: body as unknown as EventsMessage };
}

/** A "relay" queue message (consumer → relay Worker), checked for version and shape. */
export function checkRelayMessage(body: unknown): ShapeCheck<RelayMessage> {
  if (!isObject(body)) return { ok: false, issues: ["expected an object"] };
  const issues: string[] = [];
  if (body.v !== 1) issues.push("v: expected 1");
  if (!isId(body.batchId)) issues.push("batchId: expected an id");
  if (!isId(body.orgId)) issues.push("orgId: expected an id");
  if (!isId(body.projectId)) issues.push("projectId: expected an id");
  if (!(DESTINATION_KINDS as readonly unknown[]).includes(body.destination))
    issues.push(`destination: expected one of ${DESTINATION_KINDS.join(", ")}`);
  if (!isTime(body.enqueuedAt)) issues.push("enqueuedAt: expected an ISO 8601 UTC time");
  if (body.receivedAt !== undefined && !isTime(body.receivedAt))
    issues.push("receivedAt: expected an ISO 8601 UTC time");
  if (!Array.isArray(body.events)) issues.push("events: expected an array");
  else issues.push(...eventIssues(body.events, RELAY_MAX_EVENTS_PER_BATCH));
  return issues.length > 0 ? { ok: false, issues } : { ok: true, message: body as unknown as RelayMessage };
}
