import { sql } from "kysely";
import type { Db } from "../../shared/db";
import { eventsMessageSchema } from "../../shared/schemas/queue";
import { relayMessageSchema } from "../../shared/schemas/relay";
import type { QueueSender } from "../cron/jobs";
import type { ObjectStore } from "../storage/objectStore";
import {
  DEAD_LETTER_DAYS,
  type DeadLetter,
  type DeadLetterKind,
  deadLetterKeys,
  parseDeadLetterKey,
  readDeadLetter,
} from "./store";

/**
 * Automatic redrives of a dead letter that died of failed retries (the database was down). Each round is a
 * full retry schedule (about two hours), so this rides out an outage of about half a day; after that an
 * operator decides (scripts/dead-letters.ts redrive).
 */
export const MAX_AUTO_REDRIVES = 5;

export interface TendDeps {
  db: Db;
  store: ObjectStore;
  eventsQueue: QueueSender;
  relayDeadLetterQueue: QueueSender;
  now: Date;
  /** Objects looked at per run (each is a read and, when sent back, a delete). */
  budget: number;
}

export interface TendCounts {
  dead_letter_events_redriven: number;
  dead_letter_relay_redriven: number;
  dead_letters_expired: number;
  dead_letters_waiting: number;
}

/**
 * The Cron Worker's care of dead letters, bounded per run:
 *  - expiry: objects older than 30 days are deleted (dates first in the key, so the listing of each kind
 *    stops at the first one kept);
 *  - redrive, only while the database answers: a dead events message is sent back to "layers-events", so the
 *    normal persist path stores it (the erasure rule and the event-id dedupe apply: stored exactly once,
 *    however often it is sent); a relay batch that could not be recorded is sent back to "layers-relay-dlq"
 *    to be recorded. The object is deleted once the queue accepted it. Data errors and malformed messages
 *    wait for an operator (they would only fail again), as does a message past MAX_AUTO_REDRIVES.
 */
export async function tendDeadLetters(deps: TendDeps): Promise<{ counts: TendCounts; more: boolean }> {
  const counts: TendCounts = {
    dead_letter_events_redriven: 0,
    dead_letter_relay_redriven: 0,
    dead_letters_expired: 0,
    dead_letters_waiting: 0,
  };
  const cutoffDay = new Date(deps.now.getTime() - DEAD_LETTER_DAYS * 86_400_000).toISOString().slice(0, 10);
  let databaseUp = true;
  try {
    await sql`select 1`.execute(deps.db);
  } catch {
    databaseUp = false;
  }
  let budget = deps.budget;
  for (const kind of ["events", "relay"] as const) {
    for await (const key of deadLetterKeys(deps.store, kind)) {
      if (budget-- <= 0) return { counts, more: true };
      const parts = parseDeadLetterKey(key);
      if (parts && parts.day < cutoffDay) {
        await deps.store.delete(key);
        counts.dead_letters_expired += 1;
        continue;
      }
      const letter = await readDeadLetter(deps.store, key);
      if (!letter) continue;
      if (!databaseUp || !redrivable(letter)) {
        counts.dead_letters_waiting += 1;
        continue;
      }
      const body = (kind === "events" ? eventsMessageSchema : relayMessageSchema).safeParse(letter.body);
      if (!body.success) {
        // Only a message of ours can go back on the queue; this one waits for an operator.
        counts.dead_letters_waiting += 1;
        continue;
      }
      await redrive(deps, kind, letter);
      await deps.store.delete(key);
      counts[kind === "events" ? "dead_letter_events_redriven" : "dead_letter_relay_redriven"] += 1;
    }
  }
  return { counts, more: false };
}

function redrivable(letter: DeadLetter): boolean {
  if (letter.redriveRequested) return true;
  return letter.reason === "max_retries" && letter.redrives < MAX_AUTO_REDRIVES;
}

async function redrive(deps: TendDeps, kind: DeadLetterKind, letter: DeadLetter): Promise<void> {
  if (kind === "events") {
    const message = eventsMessageSchema.parse(letter.body);
    await deps.eventsQueue.send({ ...message, redrives: letter.redrives + 1 }, { contentType: "json" });
  } else {
    await deps.relayDeadLetterQueue.send(relayMessageSchema.parse(letter.body), { contentType: "json" });
  }
}
