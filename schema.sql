-- Layers: the whole database. Applying this file to an existing database is safe (npm run db:migrate):
-- every statement is idempotent (if not exists / or replace / drop-then-create for policies).
-- It runs as the owner role (the DATABASE_URL owner in production, postgres locally). The Workers
-- connect as `layers_app`: not superuser, not BYPASSRLS, not the owner of any table, so row-level
-- security always applies to them.

do $$
begin
  if not exists (select 1 from pg_roles where rolname = 'layers_app') then
    create role layers_app login nosuperuser nobypassrls nocreatedb nocreaterole;
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
-- user's deletion does not change it (the seeds say so).
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

-- Row-level security ------------------------------------------------------------------------------
-- Every tenant table: RLS enabled and forced, one policy on the transaction-local app.org_id.

do $$
declare
  t text;
begin
  foreach t in array array['projects', 'sdk_keys', 'sdk_events', 'sdk_users', 'event_daily_counts'] loop
    execute format('alter table %I enable row level security', t);
    execute format('alter table %I force row level security', t);
    execute format('drop policy if exists tenant_isolation on %I', t);
    execute format(
      'create policy tenant_isolation on %I using (org_id = current_setting(''app.org_id'', true)) '
      'with check (org_id = current_setting(''app.org_id'', true))', t);
    execute format('grant select, insert, update, delete on %I to layers_app', t);
  end loop;
end
$$;

alter table organizations enable row level security;
alter table organizations force row level security;
drop policy if exists tenant_isolation on organizations;
create policy tenant_isolation on organizations
  using (id = current_setting('app.org_id', true))
  with check (id = current_setting('app.org_id', true));
grant select, insert, update on organizations to layers_app;
grant usage on schema public to layers_app;

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
grant execute on function resolve_sdk_key(text) to layers_app;
