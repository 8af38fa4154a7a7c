-- Identity: the SDK gives each device an anonymous id from its first event; identify(userId) links it to
-- the user id. Events keep the anonymous id they were sent with, the link is stored per project, and
-- access, export and deletion by user id cover the events recorded under the user's linked anonymous ids
-- (README, "Identity: anonymous ids and identify").

-- Nullable, no default: adding it rewrites nothing.
alter table sdk_events add column anonymous_id text;

-- Only events recorded before identify (no user id yet) are found by their anonymous id: events with a
-- user id are found through sdk_events_user_ts. A partial index, so identified events cost no extra index
-- write on insert.
create index sdk_events_anonymous_ts on sdk_events (project_id, anonymous_id, ts)
  where user_id is null and anonymous_id is not null;

-- One row per (anonymous id, user id) seen together on an event of a project. The primary key serves the
-- consumer's lookup by anonymous id (the erasure rule), the second index the lookup by user id (access,
-- export, deletion). An anonymous id may be linked to several user ids (a shared device where nobody
-- called reset() on logout), and a user id to many anonymous ids (devices, reinstalls, resets).
create table sdk_identity_links (
  org_id text not null,
  project_id text not null references projects (id) on delete cascade,
  anonymous_id text not null check (length(anonymous_id) between 1 and 256),
  user_id text not null check (length(user_id) between 1 and 256),
  -- The first event that carried both (its corrected event time), and when that event was received.
  first_seen_at timestamptz not null,
  linked_at timestamptz not null,
  primary key (project_id, anonymous_id, user_id)
);
create index sdk_identity_links_user on sdk_identity_links (project_id, user_id);

alter table sdk_identity_links enable row level security;
alter table sdk_identity_links force row level security;
create policy tenant_isolation on sdk_identity_links
  using (org_id = current_setting('app.org_id', true))
  with check (org_id = current_setting('app.org_id', true));

-- A completed deletion removes the user's links; their anonymous ids live on in the receipt as SHA-256
-- digests (like the user id's), so an anonymous event of the erased user still in flight, or one arriving
-- later while the user is suppressed, is recognised after the links are gone. Purged with the receipt.
alter table deletion_requests add column anonymous_id_sha256s text[] not null default '{}';

-- The erasure rule of 0005, extended to anonymous events: an event without a user id whose anonymous id is
-- linked to a user id (a live link, or one recorded in a deletion receipt) is erased exactly when an event
-- of that user id would be (a deletion request made at or after the event was received, or a user-id
-- suppression). An event with a user id is judged by that user id alone, as before: the anonymous id it
-- carries belongs to that user from then on. A new name rather than an overload, so a Worker of the previous
-- release keeps calling the 5-argument function during a deploy (it is dropped by a later migration).
create function erased_by_request_v2(p_project_id text, p_received_at timestamptz, p_user_id text,
  p_email_sha256 text, p_phone_sha256 text, p_anonymous_id text)
returns boolean
language sql
stable
as $$
  select exists (
      select 1 from deletion_requests d
      where d.project_id = p_project_id and d.requested_at >= p_received_at
        and (d.user_id_sha256 = encode(sha256(convert_to(p_user_id, 'UTF8')), 'hex')
          or d.email_sha256 = p_email_sha256 or d.phone_sha256 = p_phone_sha256
          or (p_user_id is null and p_anonymous_id is not null and d.user_id_sha256 is not null and (
            encode(sha256(convert_to(p_anonymous_id, 'UTF8')), 'hex') = any(d.anonymous_id_sha256s)
            or d.user_id_sha256 in (
              select encode(sha256(convert_to(l.user_id, 'UTF8')), 'hex') from sdk_identity_links l
              where l.project_id = p_project_id and l.anonymous_id = p_anonymous_id)))))
    or exists (
      select 1 from suppressions s
      where s.project_id = p_project_id
        and ((s.identifier_type = 'user_id' and s.identifier_sha256 = encode(sha256(convert_to(p_user_id, 'UTF8')), 'hex'))
          or (s.identifier_type = 'email' and s.identifier_sha256 = p_email_sha256)
          or (s.identifier_type = 'phone' and s.identifier_sha256 = p_phone_sha256)
          or (s.identifier_type = 'user_id' and p_user_id is null and p_anonymous_id is not null and (
            s.identifier_sha256 in (
              select encode(sha256(convert_to(l.user_id, 'UTF8')), 'hex') from sdk_identity_links l
              where l.project_id = p_project_id and l.anonymous_id = p_anonymous_id)
            or exists (
              select 1 from deletion_requests d
              where d.project_id = p_project_id and d.user_id_sha256 = s.identifier_sha256
                and encode(sha256(convert_to(p_anonymous_id, 'UTF8')), 'hex') = any(d.anonymous_id_sha256s))))))
$$;
revoke all on function erased_by_request_v2(text, timestamptz, text, text, text, text) from public;

-- Grants (README, "Database roles"). The consumer records links and reads them for the rule; the relay and
-- the API (dead-letter replay) apply the rule; the maintenance role erases links with their user.
grant select, insert on sdk_identity_links to layers_consumer;
grant select (anonymous_id_sha256s) on deletion_requests to layers_consumer;
grant execute on function erased_by_request_v2(text, timestamptz, text, text, text, text) to layers_consumer;

grant select on sdk_identity_links to layers_relay;
grant select (anonymous_id) on sdk_events to layers_relay;
grant select (anonymous_id_sha256s) on deletion_requests to layers_relay;
grant execute on function erased_by_request_v2(text, timestamptz, text, text, text, text) to layers_relay;

grant select on sdk_identity_links to layers_api;
grant execute on function erased_by_request_v2(text, timestamptz, text, text, text, text) to layers_api;

grant select, delete on sdk_identity_links to layers_maintenance;
