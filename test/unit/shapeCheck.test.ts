import { describe, expect, test } from "vitest";
import { buildRelayMessages } from "../../functions/relay/enqueueRelays";
import { eventsMessageSchema } from "../../shared/schemas/queue";
import { relayMessageSchema } from "../../shared/schemas/relay";
import { checkEventsMessage, checkRelayMessage } from "../../shared/schemas/shapeCheck";
import { eventsMessage, queuedEvent, relayEvent, relayMessage } from "../support/messages";

// Consumers check a queue message's version and shape only (the producers build it from validated values);
// what the producers build must still pass the full schemas, and a body that is not one of our messages is
// refused by the cheap check as it was by the full one.

const tenant = { orgId: "org_1", projectId: "proj_1", sdkKey: "", sdkKeyId: "" };

describe("queue message shape checks", () => {
  test("what the consumer builds for the relays passes the full schema and the cheap check", () => {
    const message = eventsMessage(tenant, [
      queuedEvent({ eventId: "a", userId: "u1", adIds: { idfa: "idfa-1" }, consentAds: true }),
      queuedEvent({ eventId: "b", userId: null }),
      queuedEvent({ eventId: "c", userId: null, anonymousId: "anon-1" }),
      queuedEvent({ eventId: "d", userId: "u1", anonymousId: null }),
    ]);
    expect(eventsMessageSchema.safeParse(message).success).toBe(true);
    expect(checkEventsMessage(message)).toEqual({ ok: true, message });
    const built = buildRelayMessages(
      message,
      new Set(["a", "b", "c", "d"]),
      [
        { kind: "meta", sendDeviceIds: true },
        { kind: "tiktok", sendDeviceIds: false },
      ],
      new Date(),
    );
    expect(built).toHaveLength(2);
    for (const m of built) {
      expect(relayMessageSchema.safeParse(m).success).toBe(true);
      expect(checkRelayMessage(m).ok).toBe(true);
    }
  });

  test.each([
    ["not an object", "nope"],
    ["another version", { ...eventsMessage(tenant, [queuedEvent({ eventId: "a" })]), v: 2 }],
    [
      "no events",
      { v: 1, orgId: "org_x", projectId: "proj_x", receivedAt: "2026-01-01T00:00:00Z", events: [] },
    ],
    ["events not an array", { v: 1, orgId: "org_x", events: "nope" }],
    [
      "an unreadable time",
      { ...eventsMessage(tenant, [queuedEvent({ eventId: "a" })]), receivedAt: "yesterday" },
    ],
    ["an event without id", eventsMessage(tenant, [queuedEvent({ eventId: "" })])],
    [
      "an anonymous id that is not a string (a join key of the identity links)",
      {
        ...eventsMessage(tenant, [queuedEvent({ eventId: "a" })]),
        events: [{ ...queuedEvent({ eventId: "a" }), anonymousId: { id: 1 } }],
      },
    ],
    ["an empty anonymous id", eventsMessage(tenant, [queuedEvent({ eventId: "a", anonymousId: "" })])],
    [
      "properties not an object",
      {
        ...eventsMessage(tenant, [queuedEvent({ eventId: "a" })]),
        events: [{ ...queuedEvent({ eventId: "a" }), properties: [] }],
      },
    ],
  ])("events message refused: %s", (_, body) => {
    const checked = checkEventsMessage(body);
    expect(checked.ok).toBe(false);
    expect(eventsMessageSchema.safeParse(body).success).toBe(false);
  });

  test.each([
    [
      "unknown destination",
      { ...relayMessage(tenant, "meta", [relayEvent({ eventId: "a" })]), destination: "x" },
    ],
    [
      "more than 1,000 events",
      relayMessage(
        tenant,
        "meta",
        Array.from({ length: 1001 }, (_, i) => relayEvent({ eventId: `e${i}` })),
      ),
    ],
    ["no batch id", { ...relayMessage(tenant, "meta", [relayEvent({ eventId: "a" })]), batchId: "" }],
    [
      "an unreadable receivedAt",
      { ...relayMessage(tenant, "tiktok", [relayEvent({ eventId: "a" })]), receivedAt: "soon" },
    ],
  ])("relay message refused: %s", (_, body) => {
    const checked = checkRelayMessage(body);
    expect(checked.ok).toBe(false);
    if (!checked.ok) expect(checked.issues.length).toBeGreaterThan(0);
    expect(relayMessageSchema.safeParse(body).success).toBe(false);
  });
});
