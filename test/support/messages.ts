import type { EventsMessage, QueuedEvent } from "../../shared/schemas/queue";
import type { RelayEvent, RelayMessage } from "../../shared/schemas/relay";
import type { TestTenant } from "./tenant";

/** A queued event as the edge would produce it, with every optional field empty unless overridden. */
export function queuedEvent(overrides: Partial<QueuedEvent> & Pick<QueuedEvent, "eventId">): QueuedEvent {
  return {
    name: "purchase",
    userId: null,
    timestamp: new Date().toISOString(),
    appId: null,
    os: null,
    osVersion: null,
    deviceModel: null,
    browser: null,
    country: null,
    region: null,
    emailSha256: null,
    phoneSha256: null,
    properties: {},
    consentAds: null,
    ...overrides,
  };
}

/** One "events" queue message for a tenant. */
export function eventsMessage(
  t: TestTenant,
  events: QueuedEvent[],
  overrides: Partial<EventsMessage> = {},
): EventsMessage {
  return {
    v: 1,
    orgId: t.orgId,
    projectId: t.projectId,
    receivedAt: new Date().toISOString(),
    events,
    ...overrides,
  };
}

/** A relay event as the consumer would queue it, every optional field empty unless overridden. */
export function relayEvent(overrides: Partial<RelayEvent> & Pick<RelayEvent, "eventId">): RelayEvent {
  return {
    name: "purchase",
    userId: null,
    timestamp: new Date().toISOString(),
    appId: null,
    os: null,
    osVersion: null,
    deviceModel: null,
    browser: null,
    country: null,
    emailSha256: null,
    phoneSha256: null,
    phoneE164Sha256: null,
    properties: {},
    consentAds: null,
    ...overrides,
  };
}

/** One "relay" queue message (one batch for one destination) of a tenant. */
export function relayMessage(
  t: { orgId: string; projectId: string },
  destination: RelayMessage["destination"],
  events: RelayEvent[],
  overrides: Partial<RelayMessage> = {},
): RelayMessage {
  const now = new Date().toISOString();
  return {
    v: 1,
    batchId: `rb_${t.projectId.slice(-12)}${events.length}`,
    orgId: t.orgId,
    projectId: t.projectId,
    destination,
    enqueuedAt: now,
    events,
    ...overrides,
  };
}
