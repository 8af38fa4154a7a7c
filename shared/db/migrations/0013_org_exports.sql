-- Org export (issue 15): the export jobs, an index of the cold audit archive, and the exporter's own role.

-- One row per export job. `state` is the job's resumable position (functions/exports/runExport.ts): which
-- resource it is dumping, the keyset cursor of the last row written, and the parts written so far. A step
-- writes its part to the export bucket first and then records the new position here, so a step that dies
-- between the two repeats the same part under the same key: nothing is duplicated.
create table org_exports (
  id              text primary key check (id ~ '^exp_[A-Za-z0-9]{1,64}$'),
  org_id          text not null references organizations (id) on delete cascade,
  status          text not null default 'queued'
                  check (status in ('queued', 'running', 'succeeded', 'failed', 'expired')),
  project_ids     text[] check (project_ids is null or cardinality(project_ids) between 1 and 100),
  include_events  boolean not null default false,
  requested_by    text not null check (length(requested_by) between 1 and 64),
  request_id      text check (length(request_id) <= 128),
  counts          jsonb not null default '{}' check (jsonb_typeof(counts) = 'object'),
  state           jsonb not null default '{}' check (jsonb_typeof(state) = 'object'),
  object_key      text check (length(object_key) <= 1024),
  size_bytes      bigint check (size_bytes >= 0),
  sha256          text check (sha256 ~ '^[0-9a-f]{64}$'),
  error_code      text check (error_code ~ '^[a-z_]{1,64}$'),
  attempts        integer not null default 0 check (attempts >= 0),
  created_at      timestamptz not null default now(),
  started_at      timestamptz,
  heartbeat_at    timestamptz,
  finished_at     timestamptz,
  expires_at      timestamptz,
  check ((status in ('succeeded', 'failed', 'expired')) = (finished_at is not null)),
  check (status <> 'failed' or error_code is not null),
  check (status <> 'succeeded' or (object_key is not null and expires_at is not null))
);
create index org_exports_org on org_exports (org_id, created_at desc, id desc);
create index org_exports_due on org_exports (created_at) where status in ('queued', 'running');
-- One export at a time per org, enforced here too: two concurrent requests cannot both open one.
create unique index org_exports_one_open on org_exports (org_id) where status in ('queued', 'running');
create index org_exports_expiry on org_exports (expires_at) where status = 'succeeded';

-- Where the cold audit archive holds an org's days: one row per archive object (org, UTC day), written by
-- the archive job in the transaction that deletes the rows it moved. Object keys are date-first (one
-- listing expires a day for every org), so without this index an org's archive could only be found by
-- listing every org's objects; with it the audit-log API and the export read exactly the org's objects.
create table audit_archive_objects (
  org_id      text not null references organizations (id) on delete cascade,
  day         date not null,
  object_key  text not null check (length(object_key) between 1 and 1024),
  row_count   integer not null check (row_count >= 0),
  updated_at  timestamptz not null default now(),
  primary key (org_id, day)
);

do $$
declare
  t text;
begin
  foreach t in array array['org_exports', 'audit_archive_objects'] loop
    execute format('alter table %I enable row level security', t);
    execute format('alter table %I force row level security', t);
    execute format(
      'create policy tenant_isolation on %I using (org_id = current_setting(''app.org_id'', true)) '
      'with check (org_id = current_setting(''app.org_id'', true))', t);
  end loop;
end
$$;

-- The exporter: a login role of its own (the Cron Worker's EXPORT_DATABASE_URL), not BYPASSRLS, so every
-- read runs in the exported org's tenant transaction. It reads the columns it exports and nothing else:
-- no key hash, token ciphertext or storage secret is even readable by it.
do $$
begin
  if not exists (select 1 from pg_roles where rolname = 'layers_exporter') then
    create role layers_exporter login nosuperuser nobypassrls nocreatedb nocreaterole;
  end if;
end
$$;
revoke all on all tables in schema public from layers_exporter;
revoke all on all functions in schema public from layers_exporter;
grant usage on schema public to layers_exporter;

-- Which exports have work left, across orgs: the one cross-org read the exporter needs (ids only).
create function due_org_exports(p_limit integer)
returns table (id text, org_id text)
language sql stable security definer
set search_path = public, pg_temp
as $$
  select e.id, e.org_id from org_exports e
  where e.status in ('queued', 'running')
  order by e.created_at, e.id
  limit least(greatest(p_limit, 0), 100)
$$;
revoke all on function due_org_exports(integer) from public;
grant execute on function due_org_exports(integer) to layers_exporter;

grant select, update on org_exports to layers_exporter;
grant select on audit_archive_objects to layers_exporter;
-- The completion of an export is audited as the system.
grant insert on audit_log to layers_exporter;
grant select on organizations, projects, project_layers, members, audit_log, destinations,
  event_daily_counts, content_containers, ads_content, ads_content_containers,
  project_ads_content, deletion_requests, suppressions, relay_deliveries, relay_dead_letters,
  request_logs, webhook_messages, webhook_deliveries, webhook_attempts, sdk_events, sdk_users,
  sdk_identity_links, apple_attributions to layers_exporter;
-- Secret-bearing tables: only the columns an export carries.
grant select (id, org_id, name, role, project_id, mode, display_prefix, created_at, expires_at, revoked_at,
  rotated_to) on api_keys to layers_exporter;
grant select (id, org_id, project_id, display_prefix, created_at, revoked_at) on sdk_keys to layers_exporter;
grant select (id, org_id, name, endpoint, region, bucket, prefix, force_path_style, access_key_id, secret_last4,
  checked_at, check_status, created_at, updated_at) on storage_configs to layers_exporter;
grant select (id, org_id, project_id, url, description, event_types, enabled, disabled_reason, disabled_at,
  previous_secret_expires_at, failing_since, created_at, updated_at, deleted_at)
  on webhook_endpoints to layers_exporter;
-- content_jobs by column too: a job's sealed request (a later migration's request_ciphertext) is a brief,
-- never exported.
grant select (id, org_id, project_id, kind, status, storage_mode, storage_config_id, async, provider, model,
  error_code, attempts, metadata, request_id, created_at, started_at, finished_at)
  on content_jobs to layers_exporter;
-- destinations' token columns are excluded by revoking them from the table grant above: column grants
-- cannot narrow a table grant, so destinations is granted by column instead.
revoke select on destinations from layers_exporter;
grant select (org_id, project_id, kind, enabled, status, config, token_last4, created_at, updated_at,
  failing_since) on destinations to layers_exporter;

-- The API: creates and reads export jobs (the exporter runs them); reads the archive index (the audit-log
-- API serves older ranges from the cold archive).
grant select, insert on org_exports to layers_api;
grant select on audit_archive_objects to layers_api;
-- The archive job keeps the index; the Cron Worker expires exports (marks them expired after deleting
-- the object).
grant select, insert, update, delete on audit_archive_objects to layers_maintenance;
grant select, update (status, finished_at, state) on org_exports to layers_maintenance;
