import { sql } from "kysely";
import type { Db } from "../../shared/db";
import { withFilters } from "../../shared/db/filters";
import { newestFirstPage } from "../../shared/db/newestFirstPage";
import { newId } from "../../shared/ids";
import type { Subject } from "../userData/subject";

/** Receipts (completed or failed requests) are kept this long after they end, then purged. */
export const RECEIPT_RETENTION_DAYS = 730;

export type DeletionStatus = "pending" | "running" | "completed" | "failed";

/** A deletion request as the API shows it: the receipt. Digests only, never the plaintext user id. */
export interface DeletionRequest {
  id: string;
  object: "deletion_request";
  projectId: string;
  status: DeletionStatus;
  subject: { userIdSha256: string | null; emailSha256: string | null; phoneSha256: string | null };
  suppress: boolean;
  deleted: {
    events: number;
    users: number;
    attributions: number;
    deadLetters: number;
    /** The subject's events removed from dead letters kept in object storage. */
    deadLetteredEvents: number;
  };
  /** What a deletion keeps on purpose: the per-day aggregates, which are not per user. */
  retained: { eventDailyCounts: "kept: aggregated per day, event name and country, never per user" };
  failureReason: string | null;
  requestedAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  /** When this receipt itself is purged (finishedAt + 2 years); null while the request is open. */
  receiptExpiresAt: string | null;
}

const COLUMNS = [
  "id",
  "project_id",
  "status",
  "user_id_sha256",
  "email_sha256",
  "phone_sha256",
  "suppress",
  "deleted_events",
  "deleted_users",
  "deleted_attributions",
  "deleted_dead_letters",
  "deleted_dead_lettered_events",
  "failure_reason",
  "requested_at",
  "started_at",
  "finished_at",
] as const;

type Row = {
  id: string;
  project_id: string;
  status: DeletionStatus;
  user_id_sha256: string | null;
  email_sha256: string | null;
  phone_sha256: string | null;
  suppress: boolean;
  deleted_events: string | number;
  deleted_users: string | number;
  deleted_attributions: string | number;
  deleted_dead_letters: string | number;
  deleted_dead_lettered_events: string | number;
  failure_reason: string | null;
  requested_at: Date;
  started_at: Date | null;
  finished_at: Date | null;
};

const iso = (d: Date | string | null) => (d === null ? null : new Date(d).toISOString());

export function toDeletionRequest(r: Row): DeletionRequest {
  const finished = r.finished_at === null ? null : new Date(r.finished_at);
  return {
    id: r.id,
    object: "deletion_request",
    projectId: r.project_id,
    status: r.status,
    subject: { userIdSha256: r.user_id_sha256, emailSha256: r.email_sha256, phoneSha256: r.phone_sha256 },
    suppress: r.suppress,
    deleted: {
      events: Number(r.deleted_events),
      users: Number(r.deleted_users),
      attributions: Number(r.deleted_attributions),
      deadLetters: Number(r.deleted_dead_letters),
      deadLetteredEvents: Number(r.deleted_dead_lettered_events),
    },
    retained: { eventDailyCounts: "kept: aggregated per day, event name and country, never per user" },
    failureReason: r.failure_reason,
    requestedAt: new Date(r.requested_at).toISOString(),
    startedAt: iso(r.started_at),
    finishedAt: iso(finished),
    receiptExpiresAt: finished
      ? new Date(finished.getTime() + RECEIPT_RETENTION_DAYS * 86_400_000).toISOString()
      : null,
  };
}

/**
 * Opens a deletion request, or returns the one already open (pending or running) for the same subject in
 * the same project: asking twice never queues the work twice. `suppress` is sticky: a repeated request
 * asking for it turns it on. Suppressions are written here, at request time, so events arriving before the
 * Cron run are dropped too.
 */
export async function createDeletionRequest(
  db: Db,
  input: {
    orgId: string;
    projectId: string;
    subject: Subject;
    suppress: boolean;
    now: Date;
    requestId: string;
    requestedBy: string;
  },
): Promise<{ request: DeletionRequest; created: boolean; suppressionAdded: boolean }> {
  const { subject } = input;
  const { rows } = await sql<Row & { created: boolean }>`
    insert into deletion_requests (id, org_id, project_id, user_id, user_id_sha256, email_sha256, phone_sha256,
      subject_sha256, suppress, status, requested_at, request_id, requested_by)
    values (${newId("delreq")}, ${input.orgId}, ${input.projectId}, ${subject.userId}, ${subject.userIdSha256},
      ${subject.emailSha256}, ${subject.phoneSha256}, ${subject.subjectSha256}, ${input.suppress}, 'pending',
      ${input.now}, ${input.requestId}, ${input.requestedBy})
    on conflict (project_id, subject_sha256) where status in ('pending', 'running')
      do update set suppress = deletion_requests.suppress or excluded.suppress
    returning ${sql.join(COLUMNS.map((c) => sql.ref(c)))}, (xmax = 0) as created
  `.execute(db);
  const row = rows[0];
  if (!row) throw new Error("deletion request upsert returned no row");
  let suppressionAdded = false;
  if (input.suppress) {
    const identifiers = [
      ["user_id", subject.userIdSha256],
      ["email", subject.emailSha256],
      ["phone", subject.phoneSha256],
    ] as const;
    for (const [type, digest] of identifiers) {
      if (!digest) continue;
      const added = await db
        .insertInto("suppressions")
        .values({
          org_id: input.orgId,
          project_id: input.projectId,
          identifier_type: type,
          identifier_sha256: digest,
          deletion_request_id: row.id,
          created_at: input.now,
        })
        .onConflict((oc) => oc.doNothing())
        .returning("identifier_type")
        .executeTakeFirst();
      if (added) suppressionAdded = true;
    }
  }
  return { request: toDeletionRequest(row), created: row.created, suppressionAdded };
}

export async function getDeletionRequest(db: Db, id: string): Promise<DeletionRequest | null> {
  const row = await db
    .selectFrom("deletion_requests")
    .select(COLUMNS)
    .where("id", "=", id)
    .executeTakeFirst();
  return row ? toDeletionRequest(row as Row) : null;
}

/** Newest first, keyset on (requested_at, id). */
export async function listDeletionRequests(
  db: Db,
  filter: {
    limit: number;
    startingAfter?: string | undefined;
    status?: DeletionStatus | undefined;
    projectId?: string | null | undefined;
  },
): Promise<{ data: DeletionRequest[]; hasMore: boolean }> {
  const query = withFilters(db.selectFrom("deletion_requests").select(COLUMNS), {
    equal: { status: filter.status, project_id: filter.projectId },
  });
  const { rows, hasMore } = await newestFirstPage(query, {
    table: "deletion_requests",
    time: "requested_at",
    id: "id",
    limit: filter.limit,
    startingAfter: filter.startingAfter,
  });
  return { data: (rows as Row[]).map(toDeletionRequest), hasMore };
}
