import type { ObjectStore } from "../storage/objectStore";
import { type DeadLetter, deadLetterKeys, parseDeadLetterKey, putDeadLetter, readDeadLetter } from "./store";

/** Whom a deletion request names: the plaintext user id while the request is open, and digests. */
export interface ErasureSubject {
  orgId: string;
  projectId: string;
  userId: string | null;
  emailSha256: string | null;
  phoneSha256: string | null;
  /**
   * The anonymous ids linked to the user id: an event of a dead letter with no user id and one of these
   * anonymous ids is the subject's too (the rule of the database's erased_by_request_v2).
   */
  anonymousIds?: readonly string[];
}

interface EventLike {
  userId?: unknown;
  anonymousId?: unknown;
  emailSha256?: unknown;
  phoneSha256?: unknown;
}

function names(subject: ErasureSubject, e: EventLike): boolean {
  return (
    (subject.userId !== null && e.userId === subject.userId) ||
    (subject.emailSha256 !== null && e.emailSha256 === subject.emailSha256) ||
    (subject.phoneSha256 !== null && e.phoneSha256 === subject.phoneSha256) ||
    (e.userId == null &&
      typeof e.anonymousId === "string" &&
      (subject.anonymousIds ?? []).includes(e.anonymousId))
  );
}

/**
 * A deletion reaches dead letters too: every dead letter of the subject's project (events and relay
 * batches) loses the subject's events; a letter left with none is deleted. A malformed letter of the
 * project that mentions the subject anywhere is deleted whole (its shape cannot be trusted to filter it).
 * Returns how many events were removed. Throws when storage fails: the deletion then retries, and is not
 * reported complete while a copy may remain.
 */
export async function eraseFromDeadLetters(store: ObjectStore, subject: ErasureSubject): Promise<number> {
  let removed = 0;
  for (const kind of ["events", "relay"] as const) {
    for await (const key of deadLetterKeys(store, kind)) {
      const parts = parseDeadLetterKey(key);
      // "_": a letter whose ids could not be read might be anyone's; it is looked into as well.
      const ours =
        parts &&
        (parts.orgId === subject.orgId || parts.orgId === "_") &&
        (parts.projectId === subject.projectId || parts.projectId === "_");
      if (!ours) continue;
      const letter = await readDeadLetter(store, key);
      if (!letter) continue;
      const events = eventsOf(letter);
      if (events === null) {
        if (mentions(letter, subject)) {
          await store.delete(key);
          removed += 1;
        }
        continue;
      }
      const kept = events.filter((e) => !names(subject, e));
      if (kept.length === events.length) continue;
      removed += events.length - kept.length;
      if (kept.length === 0) await store.delete(key);
      else await putDeadLetter(store, { ...letter, body: { ...(letter.body as object), events: kept } });
    }
  }
  return removed;
}

function eventsOf(letter: DeadLetter): EventLike[] | null {
  const body = letter.body as { events?: unknown } | null;
  if (letter.reason === "malformed" || !body || !Array.isArray(body.events)) return null;
  return body.events.every((e) => typeof e === "object" && e !== null) ? (body.events as EventLike[]) : null;
}

function mentions(letter: DeadLetter, subject: ErasureSubject): boolean {
  const text = JSON.stringify(letter.body);
  return [subject.userId, subject.emailSha256, subject.phoneSha256].some(
    (needle) => needle !== null && text.includes(JSON.stringify(needle).slice(1, -1)),
  );
}
