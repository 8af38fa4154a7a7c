import { persistEvents } from "../../functions/events/persistEvents";
import type { Db } from "../../shared/db";
import type { EventsMessage } from "../../shared/schemas/queue";
import type { TestTenant } from "../support/tenant";

// The benches' stand-in for other orgs' traffic while a deletion runs: one connection persisting
// 150-event messages through the consumer's path (persistEvents), as fast as it can.

/** The ingest rate over a window, and its slowest message. */
export interface IngestWindow {
  eventsPerSecond: number;
  maxMessageMs: number;
}

let sequence = 0;

/** One connection persisting 150-event messages for other users until `stop` settles. */
export function ingestWhile(db: Db, t: TestTenant, stop: Promise<unknown>): Promise<IngestWindow> {
  let stopped = false;
  void stop.finally(() => {
    stopped = true;
  });
  return (async () => {
    const started = performance.now();
    let events = 0;
    let maxMessageMs = 0;
    do {
      const batch = sequence++;
      const message: EventsMessage = {
        v: 1,
        orgId: t.orgId,
        projectId: t.projectId,
        receivedAt: new Date().toISOString(),
        events: Array.from({ length: 150 }, (_, i) => ({
          eventId: `live-${batch}-${i}`,
          name: "view",
          userId: `live-${i % 30}`,
          timestamp: new Date().toISOString(),
          appId: null,
          os: null,
          osVersion: null,
          deviceModel: null,
          browser: null,
          country: "DE",
          region: null,
          emailSha256: null,
          phoneSha256: null,
          properties: { batch },
          consentAds: null,
        })),
      };
      const t0 = performance.now();
      const result = await persistEvents(db, message);
      maxMessageMs = Math.max(maxMessageMs, performance.now() - t0);
      events += result.inserted;
    } while (!stopped);
    return { eventsPerSecond: events / ((performance.now() - started) / 1_000), maxMessageMs };
  })();
}
