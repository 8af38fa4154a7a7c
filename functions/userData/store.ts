import { type Selectable, sql } from "kysely";
import type { Db } from "../../shared/db";
import { withFilters } from "../../shared/db/filters";
import type { SdkEvents } from "../../shared/db/types";

// Access and portability: everything we hold for one end user of a project (sdk_events, sdk_users, the
// identity links and the Apple Search Ads attribution). A user's events are those with their user id plus
// the events recorded before identify under an anonymous id linked to it (no user id of their own): the
// same set a deletion by user id erases (functions/deletionRequests/executeDeletions.ts).

export interface UserEvent {
  id: string;
  object: "event";
  name: string;
  userId: string | null;
  /** The SDK's anonymous id for the device, when it sent one. */
  anonymousId: string | null;
  timestamp: string;
  receivedAt: string;
  appId: string | null;
  os: string | null;
  osVersion: string | null;
  deviceModel: string | null;
  browser: string | null;
  country: string | null;
  region: string | null;
  emailSha256: string | null;
  phoneSha256: string | null;
  properties: Record<string, unknown>;
}

export interface UserState {
  object: "user";
  userId: string;
  properties: Record<string, unknown>;
  firstSeenAt: string;
  lastSeenAt: string;
  emailSha256: string | null;
  phoneSha256: string | null;
}

export interface EventFilter {
  order: "asc" | "desc";
  /** ts ≥ from. */
  from?: Date | undefined;
  /** ts < to. */
  to?: Date | undefined;
}

/** A keyset position: the last (ts, event id) already returned. */
export interface EventCursor {
  ts: Date;
  eventId: string;
}

const EVENT_COLUMNS = [
  "event_id",
  "name",
  "user_id",
  "anonymous_id",
  "ts",
  "received_at",
  "app_id",
  "os",
  "os_version",
  "device_model",
  "browser",
  "country",
  "region",
  "email_sha256",
  "phone_sha256",
  "properties",
] as const;

/** The columns a user event is built from, typed by the generated row type of sdk_events. */
type EventRow = Pick<Selectable<SdkEvents>, (typeof EVENT_COLUMNS)[number]>;

function toUserEvent(r: EventRow): UserEvent {
  return {
    id: r.event_id,
    object: "event",
    name: r.name,
    userId: r.user_id,
    anonymousId: r.anonymous_id,
    timestamp: new Date(r.ts).toISOString(),
    receivedAt: new Date(r.received_at).toISOString(),
    appId: r.app_id,
    os: r.os,
    osVersion: r.os_version,
    deviceModel: r.device_model,
    browser: r.browser,
    country: r.country,
    region: r.region,
    emailSha256: r.email_sha256,
    phoneSha256: r.phone_sha256,
    properties: r.properties,
  };
}

/** The anonymous ids linked to a user id (identify), in order. */
export async function linkedAnonymousIds(db: Db, projectId: string, userId: string): Promise<string[]> {
  const rows = await db
    .selectFrom("sdk_identity_links")
    .select("anonymous_id")
    .where("project_id", "=", projectId)
    .where("user_id", "=", userId)
    .orderBy("anonymous_id")
    .execute();
  return rows.map((r) => r.anonymous_id);
}

/** The anonymous ids linked to the user, as a subquery (sdk_identity_links_user). */
const linkedIds = (projectId: string, userId: string) =>
  sql`(select l.anonymous_id from sdk_identity_links l where l.project_id = ${projectId} and l.user_id = ${userId})`;

/** The event id a cursor names → its keyset position; null when no such event of this user exists. */
export async function eventCursor(
  db: Db,
  projectId: string,
  userId: string,
  eventId: string,
): Promise<EventCursor | null> {
  const row = await db
    .selectFrom("sdk_events")
    .select(["ts", "event_id"])
    .where("project_id", "=", projectId)
    .where("event_id", "=", eventId)
    .where(
      sql<boolean>`(user_id = ${userId} or (user_id is null and anonymous_id in ${linkedIds(projectId, userId)}))`,
    )
    .executeTakeFirst();
  return row ? { ts: new Date(row.ts), eventId: row.event_id } : null;
}

/**
 * One page of a user's events in (ts, event id) order, after `cursor`. Two arms, each ordered and limited
 * on its own index — the user's events on (project_id, user_id, ts), the anonymous ones on (project_id,
 * anonymous_id, ts) — then merged: an OR of both would read and sort the whole history on every page, so a
 * page costs the same at the start and at the end of a long history.
 */
export async function userEventsPage(
  db: Db,
  projectId: string,
  userId: string,
  filter: EventFilter,
  limit: number,
  cursor: EventCursor | null,
): Promise<{ data: UserEvent[]; hasMore: boolean; last: EventCursor | null }> {
  const desc = filter.order === "desc";
  const arm = (who: ReturnType<typeof sql<boolean>>) => {
    let query = withFilters(
      db
        .selectFrom("sdk_events")
        .select(EVENT_COLUMNS)
        .where("project_id", "=", projectId)
        .where(who)
        .orderBy("ts", filter.order)
        .orderBy("event_id", filter.order),
      { time: { column: "ts", from: filter.from, to: filter.to } },
    );
    if (cursor) {
      query = desc
        ? query.where(sql<boolean>`(ts, event_id) < (${cursor.ts}::timestamptz, ${cursor.eventId})`)
        : query.where(sql<boolean>`(ts, event_id) > (${cursor.ts}::timestamptz, ${cursor.eventId})`);
    }
    return query.limit(limit + 1);
  };
  const byUser = arm(sql<boolean>`user_id = ${userId}`);
  const anonymous = arm(sql<boolean>`user_id is null and anonymous_id in ${linkedIds(projectId, userId)}`);
  const direction = desc ? sql`desc` : sql`asc`;
  const { rows } = await sql<EventRow>`
    select * from (${byUser} union all ${anonymous}) as e
    order by ts ${direction}, event_id ${direction}
    limit ${limit + 1}`.execute(db);
  const page = rows.slice(0, limit);
  const lastRow = page.at(-1);
  return {
    data: page.map(toUserEvent),
    hasMore: rows.length > limit,
    last: lastRow ? { ts: new Date(lastRow.ts), eventId: lastRow.event_id } : null,
  };
}

/** The user's current state (sdk_users), or null when we hold none. */
export async function getUserState(db: Db, projectId: string, userId: string): Promise<UserState | null> {
  const row = await db
    .selectFrom("sdk_users")
    .select(["user_id", "properties", "first_seen_at", "last_seen_at", "email_sha256", "phone_sha256"])
    .where("project_id", "=", projectId)
    .where("user_id", "=", userId)
    .executeTakeFirst();
  if (!row) return null;
  return {
    object: "user",
    userId: row.user_id,
    properties: row.properties,
    firstSeenAt: new Date(row.first_seen_at).toISOString(),
    lastSeenAt: new Date(row.last_seen_at).toISOString(),
    emailSha256: row.email_sha256,
    phoneSha256: row.phone_sha256,
  };
}

/** The Apple Search Ads attribution record we hold for the user (the AdServices answer; never the token). */
export interface AppleAttribution {
  object: "apple_attribution";
  eventId: string;
  attribution: boolean;
  orgId: number | null;
  campaignId: number | null;
  adGroupId: number | null;
  keywordId: number | null;
  adId: number | null;
  claimType: string | null;
  conversionType: string | null;
  countryOrRegion: string | null;
  attributedAt: string;
}

const id = (v: string | number | null) => (v === null ? null : Number(v));

export async function getAppleAttribution(
  db: Db,
  projectId: string,
  userId: string,
): Promise<AppleAttribution | null> {
  const row = await db
    .selectFrom("apple_attributions")
    .selectAll()
    .where("project_id", "=", projectId)
    .where("user_id", "=", userId)
    .executeTakeFirst();
  if (!row) return null;
  return {
    object: "apple_attribution",
    eventId: row.event_id,
    attribution: row.attribution,
    orgId: id(row.apple_org_id),
    campaignId: id(row.campaign_id),
    adGroupId: id(row.ad_group_id),
    keywordId: id(row.keyword_id),
    adId: id(row.ad_id),
    claimType: row.claim_type,
    conversionType: row.conversion_type,
    countryOrRegion: row.country_or_region,
    attributedAt: new Date(row.attributed_at).toISOString(),
  };
}
