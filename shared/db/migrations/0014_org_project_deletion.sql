-- Project deletion and org deletion (issue 15). A deletion is requested by the API (the project or org is
-- marked, its keys revoked at once) and carried out by the Cron Worker in bounded batches
-- (functions/lifecycle/cascade.ts), table by table in the order the foreign keys give, so the row counts of
-- the receipt are exact and a run cut short resumes where it stopped.

-- Marked at the request: ingest refuses the project's SDK keys (resolve_sdk_key below) and the consumer
-- drops queued events of a project so marked (functions/events/persistEvents.ts), so nothing is written
-- behind the cascade.
alter table projects add column deleted_at timestamptz;
alter table organizations add column deleted_at timestamptz;

-- A project deletion: a tenant row like any other (the org reads it; the org's own deletion erases it).
-- No foreign key to projects: the project row goes before its deletion completes.
create table project_deletions (
  id             text primary key check (id ~ '^pdel_[A-Za-z0-9]{1,64}$'),
  org_id         text not null references organizations (id) on delete cascade,
  project_id     text not null check (length(project_id) <= 64),
  status         text not null default 'pending' check (status in ('pending', 'running', 'completed')),
  -- Rows per table and objects per bucket erased so far: table names and bucket names, never a value.
  counts         jsonb not null default '{}' check (jsonb_typeof(counts) = 'object'),
  -- Resume state: the step being worked on and, per bucket, the last key listed.
  step           text check (length(step) <= 128),
  cursors        jsonb not null default '{}' check (jsonb_typeof(cursors) = 'object'),
  attempts       integer not null default 0 check (attempts >= 0),
  failure_code   text check (failure_code ~ '^[A-Za-z0-9_]{1,64}$'),
  requested_at   timestamptz not null,
  requested_by   text not null check (length(requested_by) <= 128),
  request_id     text check (length(request_id) <= 128),
  started_at     timestamptz,
  heartbeat_at   timestamptz,
  finished_at    timestamptz,
  check ((status = 'completed') = (finished_at is not null))
);
create unique index project_deletions_project on project_deletions (project_id);
create index project_deletions_org on project_deletions (org_id, requested_at desc, id desc);
create index project_deletions_open on project_deletions (requested_at) where status in ('pending', 'running');

-- An org deletion and its receipt. The org's id is kept only while the deletion runs (the Cron Worker needs
-- it) and cleared when it completes; the receipt then holds no id of the org, no name, no personal data:
-- status, counts per class, times. It is read with its one-time token (stored as SHA-256) and purged two
-- years after it completed (purge_after).
create table org_deletions (
  id             text primary key check (id ~ '^odel_[A-Za-z0-9]{1,64}$'),
  org_id         text check (length(org_id) <= 64),
  token_sha256   text not null unique check (token_sha256 ~ '^[0-9a-f]{64}$'),
  status         text not null default 'pending' check (status in ('pending', 'running', 'completed')),
  counts         jsonb not null default '{}' check (jsonb_typeof(counts) = 'object'),
  step           text check (length(step) <= 128),
  cursors        jsonb not null default '{}' check (jsonb_typeof(cursors) = 'object'),
  attempts       integer not null default 0 check (attempts >= 0),
  failure_code   text check (failure_code ~ '^[A-Za-z0-9_]{1,64}$'),
  requested_at   timestamptz not null,
  started_at     timestamptz,
  heartbeat_at   timestamptz,
  finished_at    timestamptz,
  purge_after    timestamptz,
  check ((status = 'completed') = (finished_at is not null)),
  check ((status = 'completed') = (org_id is null)),
  check ((status = 'completed') = (purge_after is not null))
);
create unique index org_deletions_org on org_deletions (org_id) where org_id is not null;
create index org_deletions_open on org_deletions (requested_at) where status in ('pending', 'running');
create index org_deletions_purge on org_deletions (purge_after) where purge_after is not null;

alter table project_deletions enable row level security;
alter table project_deletions force row level security;
create policy tenant_isolation on project_deletions
  using (org_id = current_setting('app.org_id', true))
  with check (org_id = current_setting('app.org_id', true));

-- The org's own keys create its deletion and find it again (an idempotent retry); after the org is gone
-- the receipt is found by its token alone: a transaction that sets app.receipt_token_sha256 sees the one
-- receipt whose token hashes to it, whatever org (if any) it was.
alter table org_deletions enable row level security;
alter table org_deletions force row level security;
create policy tenant_isolation on org_deletions
  using (org_id = current_setting('app.org_id', true))
  with check (org_id = current_setting('app.org_id', true));
create policy receipt_by_token on org_deletions for select
  using (token_sha256 = current_setting('app.receipt_token_sha256', true));

-- Ingest: a project marked for deletion is no project (its keys answer 401 as unknown ones do).
create or replace function resolve_sdk_key(p_key_sha256 text)
returns table (key_id text, org_id text, project_id text, event_retention_days integer, archived boolean)
language sql stable security definer set search_path = public, pg_temp as $$
  select k.id, k.org_id, k.project_id, p.event_retention_days, p.archived_at is not null
  from sdk_keys k
  join projects p on p.id = k.project_id
  where k.key_sha256 = p_key_sha256 and k.revoked_at is null and p.deleted_at is null
$$;
revoke all on function resolve_sdk_key(text) from public;
grant execute on function resolve_sdk_key(text) to layers_ingest;

-- API: requests the deletions (and revokes the keys, marks the rows: grants it held already).
grant select, insert on project_deletions, org_deletions to layers_api;

-- Maintenance (Cron): the cascade erases every row of a project or an org, in every table that holds one,
-- so it deletes from every tenant table: table-level SELECT with DELETE, because each batch is picked and
-- deleted by tuple id (ctid), which column grants do not cover. Derived from the catalogue (every table
-- with an org_id column), as the cascade itself is; a table added later needs its own grant, and the
-- completeness test (test/integration/lifecycle) fails until it has one.
do $$
declare
  t text;
begin
  for t in
    select c.table_name from information_schema.columns c
    join information_schema.tables tb using (table_schema, table_name)
    where c.table_schema = 'public' and c.column_name = 'org_id' and tb.table_type = 'BASE TABLE'
      and c.table_name <> 'org_deletions'
  loop
    execute format('grant select, delete on %I to layers_maintenance', t);
  end loop;
end
$$;
grant select, delete on organizations to layers_maintenance;
grant update on project_deletions to layers_maintenance;
grant select, update, delete on org_deletions to layers_maintenance;

-- Relay and webhooks drop the messages of a project or org being deleted instead of sending them or
-- writing rows behind the cascade (functions/relay/relayBatch.ts, functions/webhooks/deliver.ts): they
-- read whether it is marked, nothing else.
grant select (id, org_id, deleted_at) on projects to layers_relay, layers_webhooks;
grant select (id, deleted_at) on organizations to layers_webhooks;
