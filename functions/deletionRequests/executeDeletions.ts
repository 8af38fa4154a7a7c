import { sql } from "kysely";
import type { Db, Tx } from "../../shared/db";
import { writeAudit } from "../audit/writeAudit";
import { eraseFromDeadLetters } from "../deadLetters/erase";
import { withdrawExportsWithEvents } from "../exports/withdraw";
import type { ObjectStore } from "../storage/objectStore";
import { emitWebhookEvent } from "../webhooks/outbox";

/** Rows per DELETE statement: each batch is its own short transaction, so no lock is held for long. */
export const DELETE_BATCH_ROWS = 5_000;
/** Rows one Cron run may delete before handing the rest to the next run (5× the 100k-event SLA). */
export const MAX_ROWS_PER_RUN = 500_000;
/** A request whose batches have failed in this many runs ends as failed (its receipt says so). */
export const MAX_ATTEMPTS = 5;
/**
 * A running request is taken over by another run only when its last progress (heartbeat_at) is older than
 * this: the run holding it died. A run that stops on purpose (budget spent, batch failed) releases it.
 */
export const LEASE_MS = 10 * 60_000;

const ACTOR = { type: "system", id: "cron:dsar-deletions" } as const;

export interface DeletionRunOptions {
  batchRows?: number;
  maxRowsPerRun?: number;
  /** Dead letters in object storage (functions/deadLetters): a deletion reaches them too. */
  deadLetters?: ObjectStore | undefined;
}

interface Claimed {
  id: string;
  org_id: string;
  project_id: string;
  user_id: string | null;
  email_sha256: string | null;
  phone_sha256: string | null;
  attempts: number;
}

/**
 * Executes open deletion requests, oldest first, as the maintenance role. Every batch deletes up to
 * `batchRows` events (by tuple id, found through the user index) and adds its count to the request row in the same transaction, so a
 * run cut short at any point resumes where it stopped with exact counts (deletes are idempotent). The
 * request completes — sdk_users, sdk_identity_links, apple_attributions and matching relay_dead_letters rows gone, plaintext
 * user id cleared, audit row written — in one final transaction. event_daily_counts is not touched: it holds no per-user data.
 */
export async function executeDeletions(
  db: Db,
  now: Date,
  options: DeletionRunOptions = {},
): Promise<{ counts: Record<string, number>; more: boolean }> {
  const batchRows = options.batchRows ?? DELETE_BATCH_ROWS;
  let budget = options.maxRowsPerRun ?? MAX_ROWS_PER_RUN;
  const counts = {
    requests_completed: 0,
    requests_failed: 0,
    sdk_events: 0,
    sdk_users: 0,
    sdk_identity_links: 0,
    apple_attributions: 0,
    relay_dead_letters: 0,
    dead_lettered_events: 0,
  };
  const tried: string[] = [];

  while (budget > 0) {
    const request = await claimNext(db, now, tried);
    if (!request) return { counts, more: false };
    tried.push(request.id);
    try {
      const targets = [
        ["user_id", request.user_id],
        ["email_sha256", request.email_sha256],
        ["phone_sha256", request.phone_sha256],
      ] as const;
      for (const [column, value] of targets) {
        if (value === null) continue;
        for (;;) {
          const n = await deleteEventBatch(db, request, column, value, Math.min(batchRows, budget), now);
          counts.sdk_events += n;
          budget -= n;
          if (budget <= 0) {
            await release(db, request);
            return { counts, more: true };
          }
          // Only an empty batch means done: a concurrent retention purge can make a batch come up short.
          if (n === 0) break;
        }
      }
      // Identity: the events recorded before identify, under the anonymous ids linked to the user id. Only
      // events without a user id: an event with another user id belongs to that user (a shared device).
      const anonymousIds = request.user_id === null ? [] : await linkedAnonymousIds(db, request);
      for (const anonymousId of anonymousIds) {
        for (;;) {
          const n = await deleteEventBatch(
            db,
            request,
            "anonymous_id",
            anonymousId,
            Math.min(batchRows, budget),
            now,
          );
          counts.sdk_events += n;
          budget -= n;
          if (budget <= 0) {
            await release(db, request);
            return { counts, more: true };
          }
          if (n === 0) break;
        }
      }
      // Copies outside the database: events and relay batches kept in dead-letter storage.
      const stored = options.deadLetters
        ? await eraseFromDeadLetters(options.deadLetters, {
            orgId: request.org_id,
            projectId: request.project_id,
            userId: request.user_id,
            emailSha256: request.email_sha256,
            phoneSha256: request.phone_sha256,
            anonymousIds,
          })
        : 0;
      const done = await complete(db, request, now, stored);
      // null: another run completed it first (it took over after our lease expired); nothing counted twice.
      if (done) {
        counts.sdk_users += done.users;
        counts.sdk_identity_links += done.links;
        counts.sdk_events += done.lateEvents;
        counts.apple_attributions += done.attributions;
        counts.relay_dead_letters += done.deadLetters;
        counts.dead_lettered_events += stored;
        counts.requests_completed += 1;
      }
    } catch (error) {
      if (await recordFailure(db, request, now, error)) counts.requests_failed += 1;
    }
  }
  return { counts, more: true };
}

async function claimNext(db: Db, now: Date, tried: string[]): Promise<Claimed | null> {
  const skip = tried.length > 0 ? tried : [""];
  const leaseCutoff = new Date(now.getTime() - LEASE_MS);
  const { rows } = await sql<Claimed>`
    update deletion_requests set status = 'running', started_at = coalesce(started_at, ${now}),
      heartbeat_at = ${now}
    where id = (
      select id from deletion_requests
      where requested_at <= ${now} and id <> all(${skip}::text[])
        and (status = 'pending' or (status = 'running' and (heartbeat_at is null or heartbeat_at < ${leaseCutoff})))
      order by requested_at, id
      limit 1
      for update skip locked
    )
    returning id, org_id, project_id, user_id, email_sha256, phone_sha256, attempts
  `.execute(db);
  return rows[0] ?? null;
}

/** The anonymous ids linked to the request's user id (maintenance role: no tenant transaction needed). */
async function linkedAnonymousIds(db: Db, request: Claimed): Promise<string[]> {
  const rows = await db
    .selectFrom("sdk_identity_links")
    .select("anonymous_id")
    .where("project_id", "=", request.project_id)
    .where("user_id", "=", request.user_id as string)
    .orderBy("anonymous_id")
    .execute();
  return rows.map((r) => r.anonymous_id);
}

async function deleteEventBatch(
  db: Db,
  request: Claimed,
  column: "user_id" | "email_sha256" | "phone_sha256" | "anonymous_id",
  value: string,
  limit: number,
  now: Date,
): Promise<number> {
  // By anonymous id: only the events recorded before identify (sdk_events_anonymous_ts, a partial index).
  const anonymousOnly = column === "anonymous_id" ? sql`and user_id is null` : sql``;
  const { rows } = await sql<{ n: string }>`
    with gone as (
      -- The batch's rows are found through the per-user (or per-hash) index and deleted by their tuple id
      -- in the same statement: one index walk, no second lookup through the primary key.
      delete from sdk_events
      where ctid = any(array(
        select ctid from sdk_events
        where project_id = ${request.project_id} and ${sql.ref(column)} = ${value} ${anonymousOnly}
        limit ${limit}
      ))
      returning 1
    )
    update deletion_requests set deleted_events = deleted_events + (select count(*) from gone),
      heartbeat_at = ${now}
    where id = ${request.id}
    returning (select count(*) from gone) as n
  `.execute(db);
  return Number(rows[0]?.n ?? 0);
}

/** Gives the request back so the next run resumes it at once instead of waiting for the lease. */
async function release(db: Db, request: Claimed): Promise<void> {
  await sql`update deletion_requests set heartbeat_at = null where id = ${request.id} and status = 'running'`.execute(
    db,
  );
}

interface Completed {
  users: number;
  links: number;
  /** Anonymous events that arrived under a link after the batches (usually none). */
  lateEvents: number;
  attributions: number;
  deadLetters: number;
}

/**
 * Deletes the rest of the user's rows (state, Apple attribution, relay dead letters holding their events),
 * closes the request and writes its audit row, all in one transaction. The request row is locked first and
 * must still be running: of two runs that reach this point for one request, the second waits for the first
 * to commit, then finds it completed and does nothing (null), so there is one completion and one audit row.
 */
async function complete(
  db: Db,
  request: Claimed,
  now: Date,
  storedDeadLetterEvents: number,
): Promise<Completed | null> {
  return db.transaction().execute(async (tx) => {
    const { rows: open } = await sql`
      select 1 from deletion_requests where id = ${request.id} and status = 'running' for update
    `.execute(tx);
    if (open.length === 0) return null;
    // Only the identifiers the request names, so each arm can use its own index.
    const matches = [
      request.user_id === null ? null : sql`user_id = ${request.user_id}`,
      request.email_sha256 === null ? null : sql`email_sha256 = ${request.email_sha256}`,
      request.phone_sha256 === null ? null : sql`phone_sha256 = ${request.phone_sha256}`,
    ].filter((m) => m !== null);
    const users = await deletedCount(
      tx
        .deleteFrom("sdk_users")
        .where("project_id", "=", request.project_id)
        .where(sql<boolean>`(${sql.join(matches, sql` or `)})`),
    );
    // The user's identity links go, and their anonymous ids stay in the receipt as digests, so the erasure
    // rule (erased_by_request_v2) still knows them for anonymous events in flight or, under a suppression,
    // arriving later. An anonymous event that reached the table after the batches above (a link made
    // meanwhile) goes too, in this transaction: no anonymous event outlives its deleted link.
    const links = request.user_id === null ? { links: 0, events: 0 } : await eraseLinks(tx, request);
    const attributions =
      request.user_id === null
        ? 0
        : await deletedCount(
            tx
              .deleteFrom("apple_attributions")
              .where("project_id", "=", request.project_id)
              .where("user_id", "=", request.user_id),
          );
    // A dead letter is a whole batch as queued (field names of shared/schemas/relay.ts); one holding an event
    // of this subject goes whole: it cannot be replayed without the subject's event.
    const inBatch = [
      request.user_id === null
        ? null
        : sql`events @> jsonb_build_array(jsonb_build_object('userId', ${request.user_id}::text))`,
      request.email_sha256 === null
        ? null
        : sql`events @> jsonb_build_array(jsonb_build_object('emailSha256', ${request.email_sha256}::text))`,
      request.phone_sha256 === null
        ? null
        : sql`events @> jsonb_build_array(jsonb_build_object('phoneSha256', ${request.phone_sha256}::text))`,
    ].filter((m) => m !== null);
    const deadLetters = await deletedCount(
      tx
        .deleteFrom("relay_dead_letters")
        .where("org_id", "=", request.org_id)
        .where("project_id", "=", request.project_id)
        .where(sql<boolean>`(${sql.join(inBatch, sql` or `)})`),
    );
    const withdrawnExports = await withdrawExportsWithEvents(tx, request.org_id, request.project_id, now);
    const { rows } = await sql<{ deleted_events: string; deleted_users: string }>`
      update deletion_requests set deleted_users = deleted_users + ${users},
        deleted_events = deleted_events + ${links.events},
        deleted_attributions = deleted_attributions + ${attributions},
        deleted_dead_letters = deleted_dead_letters + ${deadLetters},
        deleted_dead_lettered_events = deleted_dead_lettered_events + ${storedDeadLetterEvents},
        status = 'completed', finished_at = ${now}, heartbeat_at = null, user_id = null
      where id = ${request.id} and status = 'running'
      returning deleted_events, deleted_users
    `.execute(tx);
    const row = rows[0];
    await writeAudit(
      tx,
      request.org_id,
      {
        actor: ACTOR,
        action: "deletion_request.completed",
        resourceType: "deletion_request",
        resourceId: request.id,
        requestId: null,
        before: { status: "running" },
        after: {
          status: "completed",
          deletedEvents: Number(row?.deleted_events ?? 0),
          deletedUsers: Number(row?.deleted_users ?? 0),
          deletedAttributions: attributions,
          deletedDeadLetters: deadLetters,
          deletedIdentityLinks: links.links,
          withdrawnExports,
        },
      },
      now,
    );
    // The receipt's webhook, in the same transaction: a completion that rolls back notifies nobody.
    await emitWebhookEvent(tx, {
      orgId: request.org_id,
      projectId: request.project_id,
      type: "deletion_request.completed",
      payload: {
        deletionRequestId: request.id,
        projectId: request.project_id,
        status: "completed",
        deletedEvents: Number(row?.deleted_events ?? 0),
        deletedUsers: Number(row?.deleted_users ?? 0),
        deletedAttributions: attributions,
        deletedDeadLetters: deadLetters,
        link: `/v1/deletion-requests/${request.id}`,
      },
      now,
    });
    return { users, links: links.links, lateEvents: links.events, attributions, deadLetters };
  });
}

/** Deletes the user's links and any anonymous event still under them; records the digests on the receipt. */
async function eraseLinks(tx: Tx, request: Claimed): Promise<{ links: number; events: number }> {
  const { rows } = await sql<{ links: string; events: string }>`
    with gone as (
      delete from sdk_identity_links
      where project_id = ${request.project_id} and user_id = ${request.user_id}
      returning anonymous_id
    ),
    late as (
      delete from sdk_events
      where project_id = ${request.project_id} and user_id is null
        and anonymous_id in (select anonymous_id from gone)
      returning 1
    )
    update deletion_requests set anonymous_id_sha256s = array(
        select distinct digest from unnest(anonymous_id_sha256s || array(
          select encode(sha256(convert_to(anonymous_id, 'UTF8')), 'hex') from gone)) as digest
        order by digest)
    where id = ${request.id}
    returning (select count(*) from gone) as links, (select count(*) from late) as events
  `.execute(tx);
  return { links: Number(rows[0]?.links ?? 0), events: Number(rows[0]?.events ?? 0) };
}

async function deletedCount(query: {
  executeTakeFirst(): Promise<{ numDeletedRows: bigint }>;
}): Promise<number> {
  return Number((await query.executeTakeFirst()).numDeletedRows);
}

/**
 * A batch failed (the database dropped us, a statement timed out…). The request stays running and the
 * next run resumes it; after MAX_ATTEMPTS it ends as failed, with its plaintext user id cleared. Only the
 * Postgres error code is kept: messages can quote values.
 */
async function recordFailure(db: Db, request: Claimed, now: Date, error: unknown): Promise<boolean> {
  const code = (error as { code?: unknown }).code;
  const reason = `batch failed${typeof code === "string" ? ` (database error ${code})` : ""}`;
  return db.transaction().execute(async (tx) => {
    const failed = request.attempts + 1 >= MAX_ATTEMPTS;
    const updated = await tx
      .updateTable("deletion_requests")
      .set({
        attempts: request.attempts + 1,
        failure_reason: failed ? `${reason}; gave up after ${MAX_ATTEMPTS} attempts` : reason,
        // Released either way: the next run retries at once rather than after the lease.
        heartbeat_at: null,
        ...(failed ? { status: "failed" as const, finished_at: now, user_id: null } : {}),
      })
      .where("id", "=", request.id)
      .where("status", "=", "running")
      .executeTakeFirst();
    // Another run may have finished the request meanwhile: then there is nothing to fail.
    if (Number(updated.numUpdatedRows) === 0) return false;
    if (failed) {
      await writeAudit(
        tx,
        request.org_id,
        {
          actor: ACTOR,
          action: "deletion_request.failed",
          resourceType: "deletion_request",
          resourceId: request.id,
          requestId: null,
          before: { status: "running" },
          after: { status: "failed" },
        },
        now,
      );
      await emitWebhookEvent(tx, {
        orgId: request.org_id,
        projectId: request.project_id,
        type: "deletion_request.failed",
        payload: {
          deletionRequestId: request.id,
          projectId: request.project_id,
          status: "failed",
          attempts: request.attempts + 1,
          link: `/v1/deletion-requests/${request.id}`,
        },
        now,
      });
    }
    return failed;
  });
}
