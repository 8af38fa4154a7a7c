import { sql } from "kysely";
import type { Db, Tx } from "../../shared/db";
import { newestFirstPage } from "../../shared/db/newestFirstPage";
import type { DestinationKind } from "../../shared/destinations";
import type { RelayEvent } from "../../shared/schemas/relay";
import type { AppleAttribution } from "./apple";
import { notErased } from "./erasure";

// The relay's records: the delivery log (one row per batch, 30 days), dead letters (replayable, except
// Apple's), and Apple attribution records per user. Nothing here holds a token (destination or
// AdServices), a raw identifier or a device id.

export type DeliveryStatus = "delivered" | "retrying" | "rejected" | "dead_lettered" | "skipped";

export interface DeliveryAttempt {
  orgId: string;
  projectId: string;
  batchId: string;
  destination: DestinationKind;
  eventCount: number;
  sentCount: number;
  skipped: Record<string, number>;
  status: DeliveryStatus;
  responseCode: number | null;
  error: string | null;
  at: Date;
}

/**
 * Attempts at batches, in one statement: the first attempt at a batch creates its row, each later one
 * updates it and counts itself.
 */
export async function recordDeliveryAttempts(tx: Tx, all: DeliveryAttempt[]): Promise<void> {
  // The same batch twice in one queue batch (a duplicate delivery) would make the upsert touch a row
  // twice, which Postgres refuses: the last attempt stands.
  const attempts = [...new Map(all.map((a) => [`${a.orgId}/${a.batchId}`, a])).values()];
  if (attempts.length === 0) return;
  await tx
    .insertInto("relay_deliveries")
    .values(
      attempts.map((a) => ({
        org_id: a.orgId,
        project_id: a.projectId,
        batch_id: a.batchId,
        destination: a.destination,
        event_count: a.eventCount,
        sent_count: a.sentCount,
        skipped: JSON.stringify(a.skipped),
        status: a.status,
        attempts: 1,
        response_code: a.responseCode,
        error: a.error,
        first_attempt_at: a.at,
        last_attempt_at: a.at,
      })),
    )
    .onConflict((oc) =>
      oc.columns(["org_id", "batch_id"]).doUpdateSet((eb) => ({
        sent_count: eb.ref("excluded.sent_count"),
        skipped: eb.ref("excluded.skipped"),
        status: eb.ref("excluded.status"),
        attempts: sql<number>`relay_deliveries.attempts + 1`,
        response_code: eb.ref("excluded.response_code"),
        error: eb.ref("excluded.error"),
        last_attempt_at: eb.ref("excluded.last_attempt_at"),
      })),
    )
    .execute();
}

/**
 * The relay-only fields never reach a table: device ids, Apple AdServices tokens (a one-day credential),
 * the raw User-Agent and the page URL. A dead letter keeps the batch without them, so an Apple dead letter
 * is not replayable (replay refuses that kind) and a replayed Meta website event is skipped
 * (no_client_user_agent).
 */
export function withoutRelayOnlyFields(events: RelayEvent[]): RelayEvent[] {
  return events.map(
    ({ madid: _madid, adServicesToken: _token, userAgent: _userAgent, pageUrl: _pageUrl, ...rest }) => rest,
  );
}

export interface DeadLetter {
  orgId: string;
  projectId: string;
  batchId: string;
  destination: DestinationKind;
  reason: "rejected" | "max_attempts";
  responseCode: number | null;
  error: string | null;
  events: RelayEvent[];
  at: Date;
}

/**
 * Stores a dead letter (again on a second arrival: the latest failure stands, pending replay). Events whose
 * user was erased or suppressed meanwhile are left out (schema.sql erased_by_request); when none is left,
 * nothing is stored. A batch that ran out of attempts always has a delivery row saying `dead_lettered`,
 * created here when no attempt could record one (our side failed: database, keyring), so the API lists
 * every dead letter whatever failed. Returns how many events were kept.
 */
export async function storeDeadLetter(tx: Tx, d: DeadLetter): Promise<number> {
  const kept = new Set(
    await notErased(
      tx,
      d.projectId,
      d.events.map((e) => e.eventId),
    ),
  );
  const events = d.events.filter((e) => kept.has(e.eventId));
  if (events.length > 0) {
    await tx
      .insertInto("relay_dead_letters")
      .values({
        org_id: d.orgId,
        project_id: d.projectId,
        batch_id: d.batchId,
        destination: d.destination,
        reason: d.reason,
        response_code: d.responseCode,
        error: d.error,
        events: JSON.stringify(withoutRelayOnlyFields(events)),
        dead_at: d.at,
        replayed_at: null,
      })
      .onConflict((oc) =>
        oc.columns(["org_id", "batch_id"]).doUpdateSet((eb) => ({
          reason: eb.ref("excluded.reason"),
          response_code: eb.ref("excluded.response_code"),
          error: eb.ref("excluded.error"),
          events: eb.ref("excluded.events"),
          dead_at: eb.ref("excluded.dead_at"),
          replayed_at: null,
        })),
      )
      .execute();
  }
  // A rejected batch keeps its "rejected" row (the platform's answer); one that ran out of attempts shows it.
  if (d.reason !== "max_attempts") return events.length;
  await tx
    .insertInto("relay_deliveries")
    .values({
      org_id: d.orgId,
      project_id: d.projectId,
      batch_id: d.batchId,
      destination: d.destination,
      event_count: d.events.length,
      sent_count: 0,
      skipped: JSON.stringify(
        events.length < d.events.length ? { user_erased: d.events.length - events.length } : {},
      ),
      status: "dead_lettered",
      attempts: 1,
      response_code: d.responseCode,
      error: d.error ?? "every attempt failed on our side (database or keyring); see the relay logs",
      first_attempt_at: d.at,
      last_attempt_at: d.at,
    })
    .onConflict((oc) => oc.columns(["org_id", "batch_id"]).doUpdateSet({ status: "dead_lettered" }))
    .execute();
  return events.length;
}

/** Upserts each user's Apple record (the newest answer wins; asking again is harmless). */
export async function storeAppleAttributions(
  tx: Tx,
  orgId: string,
  projectId: string,
  records: AppleAttribution[],
  at: Date,
): Promise<void> {
  if (records.length === 0) return;
  // One row per user even when a batch carries two tokens for the same user: the last one stands.
  const byUser = new Map(records.map((r) => [r.userId, r]));
  await tx
    .insertInto("apple_attributions")
    .values(
      [...byUser.values()].map((r) => ({
        org_id: orgId,
        project_id: projectId,
        user_id: r.userId,
        event_id: r.eventId,
        attribution: r.attribution,
        apple_org_id: r.orgId,
        campaign_id: r.campaignId,
        ad_group_id: r.adGroupId,
        keyword_id: r.keywordId,
        ad_id: r.adId,
        claim_type: r.claimType,
        conversion_type: r.conversionType,
        country_or_region: r.countryOrRegion,
        attributed_at: at,
      })),
    )
    .onConflict((oc) =>
      oc.columns(["project_id", "user_id"]).doUpdateSet((eb) => ({
        event_id: eb.ref("excluded.event_id"),
        attribution: eb.ref("excluded.attribution"),
        apple_org_id: eb.ref("excluded.apple_org_id"),
        campaign_id: eb.ref("excluded.campaign_id"),
        ad_group_id: eb.ref("excluded.ad_group_id"),
        keyword_id: eb.ref("excluded.keyword_id"),
        ad_id: eb.ref("excluded.ad_id"),
        claim_type: eb.ref("excluded.claim_type"),
        conversion_type: eb.ref("excluded.conversion_type"),
        country_or_region: eb.ref("excluded.country_or_region"),
        attributed_at: eb.ref("excluded.attributed_at"),
      })),
    )
    .execute();
}

export interface Delivery {
  id: string;
  destination: DestinationKind;
  eventCount: number;
  sentCount: number;
  skipped: Record<string, number>;
  status: DeliveryStatus;
  attempts: number;
  responseCode: number | null;
  error: string | null;
  firstAttemptAt: Date;
  lastAttemptAt: Date;
}

/** A project's delivery log for one destination, newest first, keyset-paginated on (last_attempt_at, batch_id). */
export async function listDeliveries(
  tx: Db,
  projectId: string,
  destination: DestinationKind,
  filter: { status?: DeliveryStatus | undefined },
  page: { limit: number; startingAfter?: string | undefined },
): Promise<{ data: Delivery[]; hasMore: boolean }> {
  let q = tx
    .selectFrom("relay_deliveries")
    .selectAll()
    .where("project_id", "=", projectId)
    .where("destination", "=", destination);
  if (filter.status) q = q.where("status", "=", filter.status);
  const { rows, hasMore } = await newestFirstPage(q, {
    table: "relay_deliveries",
    time: "last_attempt_at",
    id: "batch_id",
    ...page,
    cursorScope: { project_id: projectId },
  });
  return {
    data: rows.map((r) => ({
      id: r.batch_id,
      destination: r.destination,
      eventCount: r.event_count,
      sentCount: r.sent_count,
      skipped: r.skipped as Record<string, number>,
      status: r.status,
      attempts: r.attempts,
      responseCode: r.response_code,
      error: r.error,
      firstAttemptAt: new Date(r.first_attempt_at),
      lastAttemptAt: new Date(r.last_attempt_at),
    })),
    hasMore,
  };
}

/**
 * Dead letters not yet replayed, oldest first, at most `limit`; marks them replayed in the same transaction.
 * Events of users erased or suppressed since are left out (a batch left empty is marked and not returned).
 */
export async function takeDeadLettersForReplay(
  tx: Tx,
  projectId: string,
  destination: DestinationKind,
  limit: number,
  at: Date,
): Promise<{ batches: { batchId: string; events: RelayEvent[] }[]; hasMore: boolean }> {
  const rows = await tx
    .selectFrom("relay_dead_letters")
    .select(["batch_id", "events"])
    .where("project_id", "=", projectId)
    .where("destination", "=", destination)
    .where("replayed_at", "is", null)
    .orderBy("dead_at")
    .orderBy("batch_id")
    .limit(limit + 1)
    .forUpdate()
    .execute();
  const taken = rows.slice(0, limit);
  if (taken.length) {
    await tx
      .updateTable("relay_dead_letters")
      .set({ replayed_at: at })
      .where("project_id", "=", projectId)
      .where(
        "batch_id",
        "in",
        taken.map((r) => r.batch_id),
      )
      .execute();
  }
  // A user erased or suppressed since the batch died is not sent again (the relay checks once more).
  const batches = taken.map((r) => ({ batchId: r.batch_id, events: r.events as RelayEvent[] }));
  const kept = new Set(
    await notErased(
      tx,
      projectId,
      batches.flatMap((b) => b.events.map((e) => e.eventId)),
    ),
  );
  return {
    batches: batches
      .map((b) => ({ ...b, events: b.events.filter((e) => kept.has(e.eventId)) }))
      .filter((b) => b.events.length > 0),
    hasMore: rows.length > limit,
  };
}

/**
 * Cron: the delivery log and dead letters keep 30 days (a dead letter older than that is past any
 * platform's window: Meta takes events up to 7 days old). Bounded per run; `more` when rows are left.
 */
export const DELIVERY_LOG_DAYS = 30;
const PURGE_BATCH = 5000;

export async function purgeDeliveries(
  db: Db,
  now: Date,
): Promise<{ deliveries: number; deadLetters: number; more: boolean }> {
  const cutoff = new Date(now.getTime() - DELIVERY_LOG_DAYS * 86_400_000);
  const result = await sql<{ deliveries: string; dead_letters: string }>`
    with doomed as (
      select org_id, batch_id from relay_deliveries where last_attempt_at < ${cutoff} limit ${PURGE_BATCH}
    ), gone as (
      delete from relay_deliveries d using doomed
      where d.org_id = doomed.org_id and d.batch_id = doomed.batch_id
      returning 1
    ), doomed_letters as (
      select org_id, batch_id from relay_dead_letters where dead_at < ${cutoff} limit ${PURGE_BATCH}
    ), gone_letters as (
      delete from relay_dead_letters d using doomed_letters
      where d.org_id = doomed_letters.org_id and d.batch_id = doomed_letters.batch_id
      returning 1
    )
    select (select count(*) from gone)::text as deliveries, (select count(*) from gone_letters)::text as dead_letters
  `.execute(db);
  const deliveries = Number(result.rows[0]?.deliveries ?? 0);
  const deadLetters = Number(result.rows[0]?.dead_letters ?? 0);
  return { deliveries, deadLetters, more: deliveries === PURGE_BATCH || deadLetters === PURGE_BATCH };
}
