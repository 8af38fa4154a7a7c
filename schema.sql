-- Layers: the whole database. Applying this file to an existing database is safe (npm run db:migrate):
-- every statement is idempotent (if not exists / or replace / drop-then-create for policies).
-- It runs as the owner role (the DATABASE_URL owner in production, postgres locally). Each Worker connects
-- as its own role (layers_ingest, layers_consumer, layers_relay, layers_api, layers_maintenance): not
-- superuser, not the owner of any table, so row-level security always applies to the four application
-- roles.

-- One login role per Worker, each granted only what its Worker does (the grants are at the end of this
-- file; the README's "Database roles" table lists them and a test compares the two). None is superuser;
-- only the Cron Worker's role bypasses RLS (its jobs span orgs); none owns a table.
do $$
declare
  r text;
begin
  foreach r in array array['layers_ingest', 'layers_consumer', 'layers_relay', 'layers_api'] loop
    if not exists (select 1 from pg_roles where rolname = r) then
      execute format('create role %I login nosuperuser nobypassrls nocreatedb nocreaterole', r);
    end if;
  end loop;
  if not exists (select 1 from pg_roles where rolname = 'layers_maintenance') then
    create role layers_maintenance login nosuperuser bypassrls nocreatedb nocreaterole;
  end if;
end
$$;

-- Tenants -----------------------------------------------------------------------------------------

create table if not exists organizations (
  id          text primary key,
  name        text not null check (length(name) between 1 and 200),
  created_at  timestamptz not null default now()
);

create table if not exists projects (
  id                    text primary key,
  org_id                text not null references organizations (id) on delete cascade,
  name                  text not null check (length(name) between 1 and 200),
  -- 400 days covers a 52-week attribution lookback; 30 is the floor for the product to function.
  event_retention_days  integer not null default 400 check (event_retention_days between 30 and 400),
  archived_at           timestamptz,
  created_at            timestamptz not null default now(),
  updated_at            timestamptz not null default now()
);
create index if not exists projects_org on projects (org_id, id);

-- Publishable ingest keys. Only SHA-256 of the secret is kept, plus a short prefix to recognise it.
create table if not exists sdk_keys (
  id              text primary key,
  org_id          text not null references organizations (id) on delete cascade,
  project_id      text not null references projects (id) on delete cascade,
  key_sha256      text not null unique check (key_sha256 ~ '^[0-9a-f]{64}$'),
  display_prefix  text not null,
  created_at      timestamptz not null default now(),
  revoked_at      timestamptz
);
create index if not exists sdk_keys_project on sdk_keys (project_id, id);

-- Customer SDK events -----------------------------------------------------------------------------
-- Never stored here or anywhere: IP, raw email, raw phone, raw User-Agent, device advertising ids.

create table if not exists sdk_events (
  org_id        text not null,
  project_id    text not null references projects (id) on delete cascade,
  event_id      text not null,
  name          text not null,
  user_id       text,
  ts            timestamptz not null,
  received_at   timestamptz not null,
  app_id        text,
  os            text,
  os_version    text,
  device_model  text,
  browser       text,
  country       text,
  region        text,
  email_sha256  text check (email_sha256 ~ '^[0-9a-f]{64}$'),
  phone_sha256  text check (phone_sha256 ~ '^[0-9a-f]{64}$'),
  properties    jsonb not null default '{}'::jsonb,
  -- Redelivery and client retries carry the same event id: this key makes them no-ops.
  primary key (project_id, event_id)
);
-- Per-user access (DSAR export, deletion) newest first.
create index if not exists sdk_events_user_ts on sdk_events (project_id, user_id, ts desc)
  where user_id is not null;
-- Retention purges walk each project by time.
create index if not exists sdk_events_project_ts on sdk_events (project_id, ts);

-- Current state per end user: properties (each key holds the value from the newest event, by event
-- timestamp, that carried it), first/last seen and the latest hashed identifiers.
create table if not exists sdk_users (
  org_id           text not null,
  project_id       text not null references projects (id) on delete cascade,
  user_id          text not null,
  properties       jsonb not null default '{}'::jsonb,
  -- key -> epoch milliseconds of the event that set it; lets late, older events fill gaps without
  -- overwriting newer values.
  property_times   jsonb not null default '{}'::jsonb,
  first_seen_at    timestamptz not null,
  last_seen_at     timestamptz not null,
  email_sha256     text check (email_sha256 ~ '^[0-9a-f]{64}$'),
  email_sha256_at  timestamptz,
  phone_sha256     text check (phone_sha256 ~ '^[0-9a-f]{64}$'),
  phone_sha256_at  timestamptz,
  primary key (project_id, user_id)
);

-- The aggregated warehouse: per project, day, event name and country. Never per user, so an end
-- user's deletion does not change it (the deletion receipt reports these rows as retained).
create table if not exists event_daily_counts (
  org_id      text not null,
  project_id  text not null references projects (id) on delete cascade,
  day         date not null,
  event_name  text not null,
  -- ISO 3166-1 alpha-2 from the edge; 'XX' (Cloudflare's own code) when unknown.
  country     text not null,
  count       bigint not null check (count >= 0),
  primary key (project_id, day, event_name, country)
);
create index if not exists event_daily_counts_day on event_daily_counts (day);

-- Partner API ---------------------------------------------------------------------------------------

-- The partner's people (Layers is the controller of this data: they log in and hold keys).
create table if not exists members (
  id          text primary key,
  org_id      text not null references organizations (id) on delete cascade,
  email       text not null check (length(email) between 3 and 320),
  name        text check (length(name) <= 200),
  role        text not null check (role in ('owner', 'admin', 'developer', 'read_only')),
  created_at  timestamptz not null default now(),
  updated_at  timestamptz not null default now(),
  unique (org_id, email)
);

-- Secret API keys (lp_live_… / lp_test_…): SHA-256 of the secret and a display prefix, never the secret.
create table if not exists api_keys (
  id              text primary key,
  org_id          text not null references organizations (id) on delete cascade,
  name            text not null check (length(name) between 1 and 200),
  role            text not null check (role in ('owner', 'admin', 'developer', 'read_only')),
  -- A key restricted to one project sees nothing else.
  project_id      text references projects (id) on delete cascade,
  mode            text not null check (mode in ('live', 'test')),
  key_sha256      text not null unique check (key_sha256 ~ '^[0-9a-f]{64}$'),
  display_prefix  text not null,
  created_at      timestamptz not null default now(),
  -- Rotation: the old key keeps working until expires_at (the grace period), then stops.
  expires_at      timestamptz,
  revoked_at      timestamptz,
  rotated_to      text
);
create index if not exists api_keys_org on api_keys (org_id, id);

-- Every create/update/delete, written in the same transaction as the change. Secrets never enter `changes`.
create table if not exists audit_log (
  id             text primary key,
  org_id         text not null references organizations (id) on delete cascade,
  occurred_at    timestamptz not null,
  actor_type     text not null check (actor_type in ('api_key', 'member', 'system')),
  actor_id       text not null,
  action         text not null,
  resource_type  text not null,
  resource_id    text not null,
  request_id     text,
  changes        jsonb not null default '{}'::jsonb
);
create index if not exists audit_log_org_time on audit_log (org_id, occurred_at desc, id desc);
create index if not exists audit_log_time on audit_log (occurred_at);
-- The audit-log filters a partner uses most ("what happened to this resource", "what did this key do").
create index if not exists audit_log_org_resource on audit_log (org_id, resource_id, occurred_at desc, id desc);
create index if not exists audit_log_org_actor on audit_log (org_id, actor_id, occurred_at desc, id desc);

-- Idempotency-Key records, kept 24 h: a hash of the request (method, path with query string, body) and the
-- replay envelope, never a secret (a replayed key creation shows `secret: null`). Scope: org + the API key
-- that sent it + Idempotency-Key, so another key of the org can neither replay nor block it.
create table if not exists idempotency_keys (
  org_id           text not null references organizations (id) on delete cascade,
  api_key_id       text not null,
  idempotency_key  text not null check (length(idempotency_key) between 1 and 255),
  request_sha256   text not null,
  state            text not null check (state in ('in_progress', 'completed')),
  response_status  integer,
  -- json, not jsonb: a replay must be the first response byte for byte (jsonb reorders keys).
  response_body    json,
  created_at       timestamptz not null,
  completed_at     timestamptz,
  primary key (org_id, api_key_id, idempotency_key)
);
create index if not exists idempotency_keys_created on idempotency_keys (created_at);
alter table idempotency_keys alter column response_body type json;
-- Databases from before the per-key scope: records (a 24-hour cache) cannot be attributed to a key, so they
-- go, and the primary key takes the API key in.
alter table idempotency_keys add column if not exists api_key_id text;
delete from idempotency_keys where api_key_id is null;
alter table idempotency_keys alter column api_key_id set not null;
do $$
begin
  if (select array_length(conkey, 1) from pg_constraint where conname = 'idempotency_keys_pkey') = 2 then
    alter table idempotency_keys drop constraint idempotency_keys_pkey;
    alter table idempotency_keys add primary key (org_id, api_key_id, idempotency_key);
  end if;
end
$$;

-- Request metadata, kept 30 days. Never a request or response body.
create table if not exists request_logs (
  request_id   text not null,
  org_id       text not null references organizations (id) on delete cascade,
  api_key_id   text not null,
  method       text not null,
  route        text not null,
  status       integer not null,
  latency_ms   integer not null,
  occurred_at  timestamptz not null,
  -- request_id is always generated by the API, so no client decides which row exists.
  primary key (org_id, request_id)
);
create index if not exists request_logs_org_time on request_logs (org_id, occurred_at desc, request_id desc);
create index if not exists request_logs_time on request_logs (occurred_at);
-- The caller's own X-Request-Id, kept beside ours when it has the allowed shape: a label, not a key (two
-- requests may carry the same one).
alter table request_logs add column if not exists client_request_id text
  check (client_request_id ~ '^[A-Za-z0-9._:-]{8,128}$');

-- One round trip instead of a tenant transaction's four: the request log is written after every API
-- request, so this is on the hot path. It bypasses RLS, so it checks what RLS would: the row's org must be
-- the org of the API key it names, or a caller could write rows into another org's log.
drop function if exists write_request_log(text, text, text, text, text, integer, integer, timestamptz);
create or replace function write_request_log(p_request_id text, p_org_id text, p_api_key_id text,
  p_method text, p_route text, p_status integer, p_latency_ms integer, p_occurred_at timestamptz,
  p_client_request_id text)
returns void
language plpgsql
volatile
security definer
set search_path = public, pg_temp
as $$
begin
  if not exists (select 1 from api_keys k where k.id = p_api_key_id and k.org_id = p_org_id) then
    raise exception 'write_request_log: the API key is not a key of this org' using errcode = '42501';
  end if;
  insert into request_logs (request_id, org_id, api_key_id, method, route, status, latency_ms, occurred_at,
                            client_request_id)
  values (p_request_id, p_org_id, p_api_key_id, p_method, p_route, p_status, p_latency_ms, p_occurred_at,
          p_client_request_id)
  -- Request ids are generated per request; a repeat would be a retried write of the same row.
  on conflict (org_id, request_id) do nothing;
end
$$;
revoke all on function write_request_log(text, text, text, text, text, integer, integer, timestamptz, text)
  from public;

-- Destinations (conversion relays: Meta CAPI, TikTok Events API, Apple Search Ads) ------------------
-- One row per project and platform. `config` holds only non-secret settings (dataset id, pixel code, test
-- event code, sendDeviceIds). The access token is AES-256-GCM ciphertext (base64 of IV ‖ ciphertext+tag)
-- under the Worker secret key `token_key_id`, bound by AAD to org/project/kind; only its last 4 characters
-- are kept in clear for display. Apple Search Ads has no token (both token columns null).
create table if not exists destinations (
  org_id            text not null references organizations (id) on delete cascade,
  project_id        text not null references projects (id) on delete cascade,
  kind              text not null check (kind in ('meta', 'tiktok', 'apple-search-ads')),
  enabled           boolean not null default true,
  status            text not null default 'active' check (status in ('active', 'failing')),
  config            jsonb not null default '{}'::jsonb,
  token_ciphertext  text check (length(token_ciphertext) <= 4096),
  token_key_id      text check (length(token_key_id) between 1 and 64),
  token_last4       text check (length(token_last4) <= 4),
  created_at        timestamptz not null default now(),
  updated_at        timestamptz not null default now(),
  failing_since     timestamptz,
  primary key (project_id, kind),
  check ((token_ciphertext is null) = (token_key_id is null))
);
create index if not exists destinations_org on destinations (org_id, project_id);

-- Data-subject requests (access, deletion, suppression) ----------------------------------------------
-- A deletion request is the receipt a partner hands to their end user. The plaintext user_id is kept only
-- while the request is pending or running (the executor needs it) and is cleared when it ends; the
-- receipt keeps SHA-256 digests of the subject's identifiers (so a partner can prove which user it was by
-- re-hashing), the per-data-class counts and the timestamps. Receipts are purged 730 days after they end.
create table if not exists deletion_requests (
  id               text primary key,
  org_id           text not null references organizations (id) on delete cascade,
  project_id       text not null references projects (id) on delete cascade,
  user_id          text check (length(user_id) between 1 and 256),
  user_id_sha256   text check (user_id_sha256 ~ '^[0-9a-f]{64}$'),
  email_sha256     text check (email_sha256 ~ '^[0-9a-f]{64}$'),
  phone_sha256     text check (phone_sha256 ~ '^[0-9a-f]{64}$'),
  -- SHA-256 of the canonical subject (all three digests): one open request per subject and project.
  subject_sha256   text not null check (subject_sha256 ~ '^[0-9a-f]{64}$'),
  suppress         boolean not null default false,
  status           text not null check (status in ('pending', 'running', 'completed', 'failed')),
  deleted_events   bigint not null default 0,
  deleted_users    bigint not null default 0,
  attempts         integer not null default 0,
  failure_reason   text check (length(failure_reason) <= 500),
  requested_at     timestamptz not null,
  started_at       timestamptz,
  finished_at      timestamptz,
  request_id       text,
  requested_by     text not null,
  check (user_id_sha256 is not null or email_sha256 is not null or phone_sha256 is not null),
  check (status in ('pending', 'running') or user_id is null)
);
-- Added after the first release (idempotent): per-class counts for Apple attributions and relay dead
-- letters, and the lease of the run working on a request (a run that dies holds it until it expires).
alter table deletion_requests add column if not exists deleted_attributions bigint not null default 0;
alter table deletion_requests add column if not exists deleted_dead_letters bigint not null default 0;
alter table deletion_requests add column if not exists heartbeat_at timestamptz;
-- Events removed from dead letters in object storage (functions/deadLetters/erase.ts).
alter table deletion_requests add column if not exists deleted_dead_lettered_events bigint not null default 0;
create unique index if not exists deletion_requests_open on deletion_requests (project_id, subject_sha256)
  where status in ('pending', 'running');
create index if not exists deletion_requests_org on deletion_requests (org_id, requested_at desc, id desc);
create index if not exists deletion_requests_queue on deletion_requests (requested_at)
  where status in ('pending', 'running');
create index if not exists deletion_requests_finished on deletion_requests (finished_at)
  where finished_at is not null;
-- The consumer asks, per message, whether a user was erased at or after the message was received.
create index if not exists deletion_requests_project on deletion_requests (project_id, requested_at);
create index if not exists deletion_requests_user on deletion_requests (project_id, user_id_sha256, requested_at)
  where user_id_sha256 is not null;
create index if not exists deletion_requests_email on deletion_requests (project_id, email_sha256, requested_at)
  where email_sha256 is not null;
create index if not exists deletion_requests_phone on deletion_requests (project_id, phone_sha256, requested_at)
  where phone_sha256 is not null;

-- Suppressions: while a row exists, events for this identifier are dropped by the consumer. Only digests:
-- SHA-256 of the user id, or the email/phone digest the ingest normalization produces.
create table if not exists suppressions (
  org_id               text not null references organizations (id) on delete cascade,
  project_id           text not null references projects (id) on delete cascade,
  identifier_type      text not null check (identifier_type in ('user_id', 'email', 'phone')),
  identifier_sha256    text not null check (identifier_sha256 ~ '^[0-9a-f]{64}$'),
  deletion_request_id  text,
  created_at           timestamptz not null,
  primary key (project_id, identifier_type, identifier_sha256)
);

-- Lookup and deletion by hashed identifier walk these (partial: most events carry neither).
create index if not exists sdk_events_email on sdk_events (project_id, email_sha256) where email_sha256 is not null;
create index if not exists sdk_events_phone on sdk_events (project_id, phone_sha256) where phone_sha256 is not null;
create index if not exists sdk_users_email on sdk_users (project_id, email_sha256) where email_sha256 is not null;
create index if not exists sdk_users_phone on sdk_users (project_id, phone_sha256) where phone_sha256 is not null;

-- The one erasure rule, used by the consumer before storing an event and by the relay before sending,
-- storing an attribution or a dead letter, and by dead-letter replay: an event is erased when its user id
-- (as SHA-256), email or phone digest is named by a deletion request of its project made at or after the
-- event was received (any status: a completed request must not be undone by a late message), or by an
-- active suppression. Invoker's rights: RLS and the caller's grants apply. Written as one expression so
-- the planner inlines it.
create or replace function erased_by_request(p_project_id text, p_received_at timestamptz, p_user_id text,
  p_email_sha256 text, p_phone_sha256 text)
returns boolean
language sql
stable
as $$
  select exists (
      select 1 from deletion_requests d
      where d.project_id = p_project_id and d.requested_at >= p_received_at
        and (d.user_id_sha256 = encode(sha256(convert_to(p_user_id, 'UTF8')), 'hex')
          or d.email_sha256 = p_email_sha256 or d.phone_sha256 = p_phone_sha256))
    or exists (
      select 1 from suppressions s
      where s.project_id = p_project_id
        and ((s.identifier_type = 'user_id' and s.identifier_sha256 = encode(sha256(convert_to(p_user_id, 'UTF8')), 'hex'))
          or (s.identifier_type = 'email' and s.identifier_sha256 = p_email_sha256)
          or (s.identifier_type = 'phone' and s.identifier_sha256 = p_phone_sha256)))
$$;
revoke all on function erased_by_request(text, timestamptz, text, text, text) from public;

-- Relay (conversion delivery to Meta, TikTok, Apple Search Ads) ---------------------------------------
-- One row per batch sent to a platform: counts, status, attempts, the platform's answer code and an error
-- text already stripped of tokens and personal data. Kept 30 days (Cron job relay-deliveries-purge).
create table if not exists relay_deliveries (
  org_id           text not null,
  project_id       text not null references projects (id) on delete cascade,
  batch_id         text not null check (length(batch_id) between 1 and 64),
  destination      text not null check (destination in ('meta', 'tiktok', 'apple-search-ads')),
  event_count      integer not null check (event_count between 0 and 1000),
  sent_count       integer not null default 0 check (sent_count >= 0),
  -- Events left out before sending, per reason: {"too_old": 2, "not_a_standard_event": 5}.
  skipped          jsonb not null default '{}'::jsonb,
  status           text not null check (status in ('delivered', 'retrying', 'rejected', 'dead_lettered', 'skipped')),
  attempts         integer not null default 1 check (attempts >= 1),
  response_code    integer,
  error            text check (length(error) <= 300),
  first_attempt_at timestamptz not null,
  last_attempt_at  timestamptz not null,
  primary key (org_id, batch_id)
);
create index if not exists relay_deliveries_list
  on relay_deliveries (org_id, project_id, destination, last_attempt_at desc, batch_id desc);
create index if not exists relay_deliveries_time on relay_deliveries (last_attempt_at);

-- Batches a platform refused (4xx) or that failed every attempt. `events` is the batch as queued (hashes,
-- never raw contact data) with device ids (madid) and AdServices tokens removed: a replay sends them
-- without madid, and Apple's are not replayable (no token). Kept 30 days.
create table if not exists relay_dead_letters (
  org_id          text not null,
  project_id      text not null references projects (id) on delete cascade,
  batch_id        text not null check (length(batch_id) between 1 and 64),
  destination     text not null check (destination in ('meta', 'tiktok', 'apple-search-ads')),
  reason          text not null check (reason in ('rejected', 'max_attempts')),
  response_code   integer,
  error           text check (length(error) <= 300),
  events          jsonb not null,
  dead_at         timestamptz not null,
  replayed_at     timestamptz,
  primary key (org_id, batch_id)
);
create index if not exists relay_dead_letters_pending
  on relay_dead_letters (org_id, project_id, destination, dead_at) where replayed_at is null;
-- The 30-day purge filters on dead_at alone, replayed or not.
create index if not exists relay_dead_letters_time on relay_dead_letters (dead_at);

-- Apple Search Ads attribution per end user (the AdServices record; the token is never stored).
create table if not exists apple_attributions (
  org_id            text not null,
  project_id        text not null references projects (id) on delete cascade,
  user_id           text not null,
  event_id          text not null,
  attribution       boolean not null,
  apple_org_id      bigint,
  campaign_id       bigint,
  ad_group_id       bigint,
  keyword_id        bigint,
  ad_id             bigint,
  claim_type        text check (length(claim_type) <= 64),
  conversion_type   text check (length(conversion_type) <= 64),
  country_or_region text check (length(country_or_region) <= 8),
  attributed_at     timestamptz not null,
  primary key (project_id, user_id)
);

-- Retention walks each project's user state and Apple attributions by time (functions/retention).
create index if not exists sdk_users_project_seen on sdk_users (project_id, last_seen_at);
create index if not exists apple_attributions_project_time on apple_attributions (project_id, attributed_at);

-- Row-level security ------------------------------------------------------------------------------
-- Every tenant table: RLS enabled and forced, one policy on the transaction-local app.org_id.

do $$
declare
  t text;
begin
  foreach t in array array['projects', 'sdk_keys', 'sdk_events', 'sdk_users', 'event_daily_counts', 'members',
                            'api_keys', 'audit_log', 'idempotency_keys', 'request_logs',
                            'destinations', 'deletion_requests', 'suppressions',
                            'relay_deliveries', 'relay_dead_letters', 'apple_attributions'] loop
    execute format('alter table %I enable row level security', t);
    execute format('alter table %I force row level security', t);
    execute format('drop policy if exists tenant_isolation on %I', t);
    execute format(
      'create policy tenant_isolation on %I using (org_id = current_setting(''app.org_id'', true)) '
      'with check (org_id = current_setting(''app.org_id'', true))', t);
  end loop;
end
$$;

alter table organizations enable row level security;
alter table organizations force row level security;
drop policy if exists tenant_isolation on organizations;
create policy tenant_isolation on organizations
  using (id = current_setting('app.org_id', true))
  with check (id = current_setting('app.org_id', true));

-- Ingest authentication happens before the org is known, so it cannot run under the tenant policy.
-- This definer function answers exactly one question (which live key has this hash?) and nothing else.
create or replace function resolve_sdk_key(p_key_sha256 text)
returns table (key_id text, org_id text, project_id text, event_retention_days integer, archived boolean)
language sql
stable
security definer
set search_path = public, pg_temp
as $$
  select k.id, k.org_id, k.project_id, p.event_retention_days, p.archived_at is not null
  from sdk_keys k
  join projects p on p.id = k.project_id
  where k.key_sha256 = p_key_sha256 and k.revoked_at is null
$$;
revoke all on function resolve_sdk_key(text) from public;

-- API authentication, like ingest's: one question (which key is live at `p_now` for this hash?). `p_now` is
-- passed in so the caller's clock decides when a rotated key's grace period ends.
create or replace function resolve_api_key(p_key_sha256 text, p_now timestamptz)
returns table (key_id text, org_id text, role text, project_id text, mode text)
language sql
stable
security definer
set search_path = public, pg_temp
as $$
  select k.id, k.org_id, k.role, k.project_id, k.mode
  from api_keys k
  where k.key_sha256 = p_key_sha256
    and k.revoked_at is null
    and (k.expires_at is null or k.expires_at > p_now)
$$;
revoke all on function resolve_api_key(text, timestamptz) from public;

-- Grants ------------------------------------------------------------------------------------------------
-- Least privilege per Worker. Everything is revoked first, so applying this file to an existing database
-- converges on exactly these grants (a privilege removed here is removed there). The README's "Database
-- roles" table is the same list; test/integration/roles.test.ts compares it with the catalog.

do $$
declare
  r text;
begin
  foreach r in array array['layers_ingest', 'layers_consumer', 'layers_relay', 'layers_api',
                            'layers_maintenance'] loop
    execute format('revoke all on all tables in schema public from %I', r);
    execute format('revoke all on all functions in schema public from %I', r);
    execute format('grant usage on schema public to %I', r);
  end loop;
  -- The single role of earlier releases (roles are cluster-wide: it may still serve another database).
  if exists (select 1 from pg_roles where rolname = 'layers_app') then
    revoke all on all tables in schema public from layers_app;
    revoke all on all functions in schema public from layers_app;
  end if;
end
$$;

-- Ingest (internet-facing): the SDK-key lookup, nothing else.
grant execute on function resolve_sdk_key(text) to layers_ingest;

-- Consumer: stores events, counts and user state; reads the erasure rules and which destinations are on
-- (never a token, never a deletion request's plaintext user id).
grant select on projects, suppressions to layers_consumer;
grant select, insert on sdk_events to layers_consumer;
grant select, insert, update on sdk_users, event_daily_counts to layers_consumer;
grant select (org_id, project_id, requested_at, user_id_sha256, email_sha256, phone_sha256)
  on deletion_requests to layers_consumer;
grant select (org_id, project_id, kind, enabled, config) on destinations to layers_consumer;
grant execute on function erased_by_request(text, timestamptz, text, text, text) to layers_consumer;

-- Relay: reads destinations (tokens included, to send), records deliveries, dead letters and Apple
-- attributions, marks a destination failing/active, and checks each event against the erasure rules.
grant select on destinations, suppressions to layers_relay;
grant update (status, failing_since) on destinations to layers_relay;
grant select, insert, update on relay_deliveries, relay_dead_letters, apple_attributions to layers_relay;
grant select (org_id, project_id, event_id, user_id, email_sha256, phone_sha256, received_at)
  on sdk_events to layers_relay;
grant select (org_id, project_id, requested_at, user_id_sha256, email_sha256, phone_sha256)
  on deletion_requests to layers_relay;
grant execute on function erased_by_request(text, timestamptz, text, text, text) to layers_relay;

-- Partner API. The audit log is insert-only (rows are never changed or removed by the API); the request
-- log is written only through write_request_log.
grant execute on function resolve_api_key(text, timestamptz) to layers_api;
grant execute on function write_request_log(text, text, text, text, text, integer, integer, timestamptz, text)
  to layers_api;
grant select, update on organizations to layers_api;
grant select, insert, update on projects, sdk_keys, api_keys, deletion_requests, destinations to layers_api;
grant delete on destinations to layers_api;
grant select, insert, update, delete on members, idempotency_keys to layers_api;
grant select, insert, delete on suppressions to layers_api;
grant select, insert on audit_log to layers_api;
grant select on sdk_events, sdk_users, apple_attributions, request_logs, relay_deliveries to layers_api;
grant select, update (replayed_at) on relay_dead_letters to layers_api;
grant execute on function erased_by_request(text, timestamptz, text, text, text) to layers_api;

-- Maintenance (the Cron Worker; BYPASSRLS because its jobs span orgs).
grant select on organizations, projects to layers_maintenance;
-- Data-subject requests: the deletion executor erases one user's rows, keeps the receipt and purges it
-- after 2 years.
grant select, update, delete on deletion_requests to layers_maintenance;
grant select, delete on sdk_events, sdk_users, apple_attributions, relay_dead_letters to layers_maintenance;
grant insert on audit_log to layers_maintenance;
-- Relay: the 30-day purge of the delivery log and the dead letters.
grant select, delete on relay_deliveries to layers_maintenance;
-- Destinations: the key-rotation re-encryption (scripts/reencrypt-destination-tokens.ts) reads every org's
-- tokens and rewrites only the ciphertext and its key id.
grant select, update (token_ciphertext, token_key_id) on destinations to layers_maintenance;
-- Retention and the cold audit archive (functions/retention, functions/archive): each class is selected by
-- its time index and deleted by primary key; audit rows are read whole for the archive before deletion.
grant select, delete on event_daily_counts, request_logs, idempotency_keys, audit_log to layers_maintenance;
