import { sql } from "kysely";
import { type Db, withTenant } from "../../shared/db";
import type { EventsMessage } from "../../shared/schemas/queue";

export interface PersistResult {
  /** false when the project does not exist in the message's org: nothing was written. */
  projectFound: boolean;
  received: number;
  /** Events stored by this call. The rest were already stored (redelivery or a client retry). */
  inserted: number;
  /** Ids of the events this call stored: only these go on to the relays, so nothing is sent twice. */
  insertedEventIds: string[];
  /**
   * Ids of the events that passed the erasure/suppression filter, stored by this call or before. A
   * redelivered message relays these (never message.events): an erased or suppressed user stays unsent.
   */
  keptEventIds: string[];
  /** Events dropped because their user was erased (deletion request) or is suppressed: never stored. */
  erased: number;
}

/**
 * At most this many events go into one statement. Measured (bench part b, 150-event messages): 1,500 was
 * ~30% faster than one statement per message; 5,000 and more were slower, fewer statements running at once.
 */
export const PERSIST_MAX_EVENTS_PER_STATEMENT = 1_500;

/** One queue message's events in one statement; see persistMessages. */
export async function persistEvents(db: Db, message: EventsMessage): Promise<PersistResult> {
  const [result] = await persistMessages(db, [message]);
  return result as PersistResult;
}

/**
 * Stores the events of one or more queue messages of the same org and project in a single statement (one
 * round trip inside a tenant transaction; the consumer groups a queue batch's messages per project, which
 * cuts the per-statement cost that dominated with one statement per message):
 *  - sdk_events: insert … on conflict do nothing, so a redelivered message changes nothing (and an event
 *    id in two messages of the group is stored once);
 *  - event_daily_counts and sdk_users are fed only from the rows that insert returned, i.e. the events
 *    that are new, so a duplicate is never counted twice and never moves a user's state;
 *  - erasure is judged per event against its own message's receivedAt.
 * Returns one result per message, in order. All messages must share orgId and projectId. Device
 * advertising ids in the messages are deliberately not among the columns read here.
 */
export async function persistMessages(db: Db, messages: EventsMessage[]): Promise<PersistResult[]> {
  const first = messages[0];
  if (!first) return [];
  const { orgId, projectId } = first;
  if (messages.some((m) => m.orgId !== orgId || m.projectId !== projectId))
    throw new Error("persistMessages: every message must belong to the same org and project");
  const events = JSON.stringify(
    messages.flatMap((message) =>
      message.events.map((e) => ({
        event_id: e.eventId,
        name: e.name,
        user_id: e.userId,
        anonymous_id: e.anonymousId ?? null,
        ts: e.timestamp,
        received_at: message.receivedAt,
        app_id: e.appId,
        os: e.os,
        os_version: e.osVersion,
        device_model: e.deviceModel,
        browser: e.browser,
        country: e.country,
        region: e.region,
        email_sha256: e.emailSha256,
        phone_sha256: e.phoneSha256,
        properties: e.properties,
      })),
    ),
  );
  const eventCount = messages.reduce((n, m) => n + m.events.length, 0);
  const userProps = newestPropertiesPerUser(messages);
  // The earliest receipt of the group: a deletion request made since then may apply to some event.
  const receivedAt = new Date(Math.min(...messages.map((m) => Date.parse(m.receivedAt)))).toISOString();

  return withTenant(db, orgId, async (tx) => {
    const { rows } = await sql<{
      project_found: boolean;
      inserted_ids: string[] | null;
      kept_ordinals: number[] | null;
    }>`
      with project as (
        -- A project marked for deletion is no project: its queued events are dropped, not written behind
        -- the cascade that is erasing it (functions/lifecycle).
        select id from projects where id = ${projectId} and deleted_at is null
      ),
      incoming as (
        -- Read as sdk_events rows (the table's own row type, not a second declaration of it); the columns
        -- the JSON leaves out (org, project) are null here and not read below.
        -- ord: the event's position in the JSON, to hand the results back to their messages.
        select e.*, j.ord from jsonb_array_elements(${events}::jsonb) with ordinality as j(doc, ord)
        cross join lateral jsonb_populate_record(null::sdk_events, j.doc) as e
        where exists (select 1 from project)
      ),
      -- Erasure (data-subject deletion): an event is dropped, never stored, when erased_by_request_v2 (schema.sql,
      -- the rule the relay applies too) says its user, email or phone — or, for an event without a user id,
      -- the user its anonymous id is linked to — was named by a deletion request made at or after its
      -- message was received, or is suppressed. The guards skip the per-event probes for projects that have
      -- neither.
      guards as (
        select
          exists (select 1 from deletion_requests
                  where project_id = ${projectId} and requested_at >= ${receivedAt}::timestamptz)
          or exists (select 1 from suppressions where project_id = ${projectId}) as any_rule
      ),
      kept as (
        select i.* from incoming i
        cross join guards g
        where not (g.any_rule and (erased_by_request_v2(${projectId}, i.received_at, i.user_id,
          i.email_sha256, i.phone_sha256, i.anonymous_id)
          -- A link this very group would record, were its identify not erased: the anonymous events sent
          -- just before an erased or suppressed user's identify (one SDK flush) go with it.
          or (i.user_id is null and i.anonymous_id is not null and exists (
            select 1 from incoming j
            where j.anonymous_id = i.anonymous_id and j.user_id is not null
              and erased_by_request_v2(${projectId}, j.received_at, j.user_id, j.email_sha256,
                j.phone_sha256, null)))))
      ),
      -- Identity: an event carrying both a user id and an anonymous id (identify, and every event after it)
      -- links them. Only events that passed the erasure rule link: an erased user's late identify records
      -- nothing. One row per distinct pair of the group, so a batch of an identified user costs one probe.
      linked as (
        insert into sdk_identity_links (org_id, project_id, anonymous_id, user_id, first_seen_at, linked_at)
        select ${orgId}, ${projectId}, anonymous_id, user_id, min(ts), min(received_at)
        from kept
        where user_id is not null and anonymous_id is not null
        group by anonymous_id, user_id
        order by anonymous_id, user_id -- a stable lock order, as for the counts below
        on conflict (project_id, anonymous_id, user_id) do nothing
      ),
      inserted as (
        insert into sdk_events (org_id, project_id, event_id, name, user_id, anonymous_id, ts, received_at,
          app_id, os, os_version, device_model, browser, country, region, email_sha256, phone_sha256, properties)
        select ${orgId}, ${projectId}, event_id, name, user_id, anonymous_id, ts, received_at, app_id, os,
          os_version, device_model, browser, country, region, email_sha256, phone_sha256,
          coalesce(properties, '{}'::jsonb)
        from kept
        on conflict (project_id, event_id) do nothing
        returning event_id, name, user_id, ts, country, email_sha256, phone_sha256, properties
      ),
      counted as (
        insert into event_daily_counts (org_id, project_id, day, event_name, country, count)
        select ${orgId}, ${projectId}, (ts at time zone 'UTC')::date, name, coalesce(country, 'XX'), count(*)
        from inserted
        group by 3, 4, 5
        order by 3, 4, 5 -- a stable lock order: concurrent consumers never deadlock on these rows
        on conflict (project_id, day, event_name, country)
          do update set count = event_daily_counts.count + excluded.count
      ),
      -- For each user and property key, the value from the newest new event that carried it. When every
      -- event of the statement was stored (the usual case), that is the userProps parameter, worked out before
      -- from the same events (newestPropertiesPerUser); only otherwise (a redelivery, an event id twice, an
      -- erased user) is it worked out here from the rows stored, expanding every event's properties.
      all_stored as (
        select ${userProps !== null}::boolean
          and (select count(*) from inserted) = ${eventCount} as yes
      ),
      latest_props as (
        select distinct on (user_id, p.key) user_id, p.key, p.value,
          (extract(epoch from ts) * 1000)::bigint as at_ms
        from inserted, jsonb_each(inserted.properties) as p
        where user_id is not null and not (select yes from all_stored)
        order by user_id, p.key, ts desc
      ),
      user_props as (
        select user_id, jsonb_object_agg(key, value) as properties, jsonb_object_agg(key, at_ms) as times
        from latest_props group by user_id
        union all
        select u.user_id, u.properties, (
            select jsonb_object_agg(t.key, (extract(epoch from (t.value #>> '{}')::timestamptz) * 1000)::bigint)
            from jsonb_each(u.times) as t
          )
        from jsonb_to_recordset(${userProps}::jsonb) as u(user_id text, properties jsonb, times jsonb)
        where (select yes from all_stored) and u.properties <> '{}'::jsonb
      ),
      user_rows as (
        select user_id, min(ts) as first_seen, max(ts) as last_seen,
          (array_agg(email_sha256 order by ts desc) filter (where email_sha256 is not null))[1] as email_sha256,
          max(ts) filter (where email_sha256 is not null) as email_at,
          (array_agg(phone_sha256 order by ts desc) filter (where phone_sha256 is not null))[1] as phone_sha256,
          max(ts) filter (where phone_sha256 is not null) as phone_at
        from inserted where user_id is not null group by user_id
      ),
      users as (
        insert into sdk_users (org_id, project_id, user_id, properties, property_times, first_seen_at,
          last_seen_at, email_sha256, email_sha256_at, phone_sha256, phone_sha256_at)
        select ${orgId}, ${projectId}, r.user_id, coalesce(p.properties, '{}'::jsonb),
          coalesce(p.times, '{}'::jsonb), r.first_seen, r.last_seen, r.email_sha256, r.email_at,
          r.phone_sha256, r.phone_at
        from user_rows r left join user_props p using (user_id)
        order by r.user_id
        on conflict (project_id, user_id) do update set
          -- Rectification: a key takes the incoming value only when its event is at least as new as the
          -- one that set the stored value. Late, older events fill missing keys but never overwrite.
          properties = sdk_users.properties || coalesce((
            select jsonb_object_agg(n.key, excluded.properties -> n.key)
            from jsonb_each(excluded.property_times) as n
            where (n.value)::bigint >= coalesce((sdk_users.property_times ->> n.key)::bigint, 0)
          ), '{}'::jsonb),
          property_times = sdk_users.property_times || coalesce((
            select jsonb_object_agg(n.key, n.value)
            from jsonb_each(excluded.property_times) as n
            where (n.value)::bigint >= coalesce((sdk_users.property_times ->> n.key)::bigint, 0)
          ), '{}'::jsonb),
          first_seen_at = least(sdk_users.first_seen_at, excluded.first_seen_at),
          last_seen_at = greatest(sdk_users.last_seen_at, excluded.last_seen_at),
          email_sha256 = case when excluded.email_sha256_at >= coalesce(sdk_users.email_sha256_at, '-infinity')
            then excluded.email_sha256 else sdk_users.email_sha256 end,
          email_sha256_at = greatest(sdk_users.email_sha256_at, excluded.email_sha256_at),
          phone_sha256 = case when excluded.phone_sha256_at >= coalesce(sdk_users.phone_sha256_at, '-infinity')
            then excluded.phone_sha256 else sdk_users.phone_sha256 end,
          phone_sha256_at = greatest(sdk_users.phone_sha256_at, excluded.phone_sha256_at)
      )
      select exists (select 1 from project) as project_found,
        (select array_agg(event_id) from inserted) as inserted_ids,
        (select array_agg(ord) from kept) as kept_ordinals
    `.execute(tx);
    const row = rows[0];
    const projectFound = row?.project_found ?? false;
    const kept = new Set((row?.kept_ordinals ?? []).map(Number));
    const inserted = new Set(row?.inserted_ids ?? []);
    // Back to the messages: an event id stored by this statement counts as inserted for the first message
    // that carried it (it was stored once), kept for every message whose copy passed the filter.
    let ordinal = 0;
    return messages.map((message) => {
      const insertedEventIds: string[] = [];
      const keptEventIds: string[] = [];
      for (const e of message.events) {
        ordinal += 1;
        if (!kept.has(ordinal)) continue;
        keptEventIds.push(e.eventId);
        if (inserted.delete(e.eventId)) insertedEventIds.push(e.eventId);
      }
      return {
        projectFound,
        received: message.events.length,
        inserted: insertedEventIds.length,
        insertedEventIds,
        keptEventIds,
        erased: projectFound ? message.events.length - keptEventIds.length : 0,
      };
    });
  });
}

/**
 * For each user of the statement, each property key's value from the user's newest event that carries it
 * and that event's timestamp, as JSON for the statement's user_props; the same result the statement would
 * reach by expanding every event's properties in Postgres (measured: a fifth of the statement's database
 * CPU in bench part b, 15,000 rows for 1,500 events of 10 keys), here a loop over keys. Only used there
 * when every event was stored. Among events of the same millisecond either may win, as in the statement.
 * null (the statement works it out itself) when a timestamp does not parse.
 */
function newestPropertiesPerUser(messages: EventsMessage[]): string | null {
  const users = new Map<string, Map<string, { value: unknown; ms: number; ts: string }>>();
  for (const message of messages) {
    for (const e of message.events) {
      if (e.userId == null) continue;
      const ms = Date.parse(e.timestamp);
      if (Number.isNaN(ms)) return null;
      let keys = users.get(e.userId);
      if (!keys) {
        keys = new Map();
        users.set(e.userId, keys);
      }
      // Own keys only ("__proto__" and "constructor" are names like any other); Maps keep them as data.
      for (const [key, value] of Object.entries(e.properties ?? {})) {
        const held = keys.get(key);
        if (!held || ms > held.ms) keys.set(key, { value, ms, ts: e.timestamp });
      }
    }
  }
  const rows: { user_id: string; properties: Record<string, unknown>; times: Record<string, string> }[] = [];
  for (const [userId, keys] of users) {
    // Null-prototype objects: an own "__proto__" key is stored as a key, never as the prototype.
    const properties: Record<string, unknown> = Object.create(null);
    const times: Record<string, string> = Object.create(null);
    for (const [key, held] of keys) {
      properties[key] = held.value;
      times[key] = held.ts;
    }
    rows.push({ user_id: userId, properties, times });
  }
  return JSON.stringify(rows);
}
