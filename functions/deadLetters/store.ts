import type { ObjectStore } from "../storage/objectStore";

// Dead letters live in object storage, not in the database: they exist because the database (or a message)
// failed, and an outage of the database must not be able to lose them. One JSON object per dead message:
//
//   <kind>/<yyyy>/<mm>/<dd>/<org_id>/<project_id>/<id>.json     (kind: events | relay; "_" for unknown ids)
//
// Date first, so expiry is one listing that stops at the first key it keeps (as the audit archive does);
// org and project in the key, so a deletion request finds the objects of its project without reading others.

export type DeadLetterKind = "events" | "relay";

/**
 * Why a message died: it failed every retry (max_retries: the database was down, say), a value in it is one
 * the database refuses (data_error: only the refused events are dead-lettered), or it is not a message of
 * ours at all (malformed).
 */
export type DeadLetterReason = "max_retries" | "data_error" | "malformed";

export interface DeadLetter {
  v: 1;
  kind: DeadLetterKind;
  /** The queue message id (events) or batch id (relay): a redelivery overwrites, never duplicates. */
  id: string;
  deadAt: string;
  reason: DeadLetterReason;
  /** data_error: the Postgres SQLSTATE (never the error text, which can quote values). */
  code?: string;
  orgId: string | null;
  projectId: string | null;
  /** How often it was sent back already (automatic redrives stop after MAX_AUTO_REDRIVES). */
  redrives: number;
  /** An operator asked for it to be sent back whatever its reason (scripts/dead-letters.ts). */
  redriveRequested?: boolean;
  /** The message, without the transient fields (strip.ts). */
  body: unknown;
}

/** Dead letters are kept this long, then deleted; a deletion request reaches them before that. */
export const DEAD_LETTER_DAYS = 30;

const SAFE_ID = /^[A-Za-z0-9_.:-]{1,128}$/;
const segment = (id: string | null) => (id !== null && SAFE_ID.test(id) ? id : "_");

export function deadLetterKey(
  letter: Pick<DeadLetter, "kind" | "deadAt" | "orgId" | "projectId" | "id">,
): string {
  const day = letter.deadAt.slice(0, 10).split("-");
  return `${letter.kind}/${day.join("/")}/${segment(letter.orgId)}/${segment(letter.projectId)}/${encodeURIComponent(letter.id)}.json`;
}

export interface KeyParts {
  kind: DeadLetterKind;
  day: string;
  orgId: string;
  projectId: string;
}

export function parseDeadLetterKey(key: string): KeyParts | null {
  const m = /^(events|relay)\/(\d{4})\/(\d{2})\/(\d{2})\/([^/]+)\/([^/]+)\/[^/]+\.json$/.exec(key);
  if (!m) return null;
  return { kind: m[1] as DeadLetterKind, day: `${m[2]}-${m[3]}-${m[4]}`, orgId: m[5]!, projectId: m[6]! };
}

export async function putDeadLetter(store: ObjectStore, letter: DeadLetter): Promise<string> {
  const key = deadLetterKey(letter);
  await store.put(key, new TextEncoder().encode(JSON.stringify(letter)), "application/json");
  return key;
}

export async function readDeadLetter(store: ObjectStore, key: string): Promise<DeadLetter | undefined> {
  const bytes = await store.get(key);
  return bytes === undefined ? undefined : (JSON.parse(new TextDecoder().decode(bytes)) as DeadLetter);
}

/** Every key of one kind, oldest day first. */
export async function* deadLetterKeys(store: ObjectStore, kind: DeadLetterKind): AsyncGenerator<string> {
  let after: string | undefined;
  for (;;) {
    const page = await store.list(`${kind}/`, after ? { after } : {});
    yield* page.keys;
    if (!page.next) return;
    after = page.next;
  }
}
