import { type Db, isDataError } from "../../shared/db";
import type { EventsMessage, QueuedEvent } from "../../shared/schemas/queue";
import { type PersistResult, persistEvents } from "./persistEvents";

/** Events the database refused as data, with the Postgres SQLSTATE (never the error text). */
export interface Refused {
  code: string;
  events: QueuedEvent[];
}

/**
 * persistEvents, with one bad event unable to take its message down: when the database refuses the batch
 * as data, the batch is split in halves and each half stored on its own (persisting is idempotent, so a
 * half that committed before is a no-op), down to the single events that fail. Those come back as
 * `refused`, for the dead letters; everything else is stored. Other errors are thrown: the message retries.
 */
export async function persistIsolating(
  db: Db,
  message: EventsMessage,
): Promise<PersistResult & { refused: Refused[] }> {
  try {
    return { ...(await persistEvents(db, message)), refused: [] };
  } catch (error) {
    if (!isDataError(error)) throw error;
    if (message.events.length === 1) {
      return {
        projectFound: true,
        received: 1,
        inserted: 0,
        insertedEventIds: [],
        keptEventIds: [],
        erased: 0,
        refused: [{ code: error.code, events: message.events }],
      };
    }
    const middle = Math.ceil(message.events.length / 2);
    const first = await persistIsolating(db, { ...message, events: message.events.slice(0, middle) });
    const second = await persistIsolating(db, { ...message, events: message.events.slice(middle) });
    return {
      projectFound: first.projectFound || second.projectFound,
      received: first.received + second.received,
      inserted: first.inserted + second.inserted,
      insertedEventIds: [...first.insertedEventIds, ...second.insertedEventIds],
      keptEventIds: [...first.keptEventIds, ...second.keptEventIds],
      erased: first.erased + second.erased,
      refused: [...first.refused, ...second.refused],
    };
  }
}
