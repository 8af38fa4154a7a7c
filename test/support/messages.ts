import type { EventsMessage, QueuedEvent } from "../../shared/schemas/queue";
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
