-- Content generation (issue 14): which product layers a project has on, content jobs, the containers that
-- hold generated media, the org's creative library and partners' own storage. The brief and the product
-- info of a job are never stored (data-handling seed: request data is not persisted after the job): no
-- column below can hold them. Every table is a tenant table: org_id, row-level security forced, the
-- tenant policy of the others.

-- A project's product layers. `attribution` is the event relay, `content` content generation; a layer is
-- on when its row says enabled. Every project existing now keeps doing what it does: attribution on.
-- Content is off until a partner switches it on.
create table project_layers (
  org_id      text not null references organizations (id) on delete cascade,
  project_id  text not null references projects (id) on delete cascade,
  layer       text not null check (layer in ('attribution', 'content')),
  enabled     boolean not null default true,
  settings    jsonb not null default '{}'::jsonb
              check (jsonb_typeof(settings) = 'object' and length(settings::text) <= 8192),
  created_at  timestamptz not null default now(),
  updated_at  timestamptz not null default now(),
  primary key (project_id, layer)
);
create index project_layers_org on project_layers (org_id, project_id);
insert into project_layers (org_id, project_id, layer, enabled)
select org_id, id, 'attribution', true from projects;

-- A partner's S3-compatible bucket for `storage: { id }`. The secret access key is encrypted like a
-- destination token (AES-256-GCM under the DESTINATION_KEYS ring, its key id beside it) and never returned;
-- the last four characters let a partner recognise it. The endpoint is checked against private ranges by
-- the API, not here: the tests' second S3 server is on loopback.
create table storage_configs (
  id                 text primary key,
  org_id             text not null references organizations (id) on delete cascade,
  name               text not null check (length(name) between 1 and 100),
  endpoint           text not null check (length(endpoint) between 1 and 500),
  region             text not null check (length(region) between 1 and 64),
  bucket             text not null check (length(bucket) between 3 and 63),
  prefix             text not null default '' check (length(prefix) <= 512),
  force_path_style   boolean not null default false,
  access_key_id      text not null check (length(access_key_id) between 1 and 128),
  secret_ciphertext  text not null check (length(secret_ciphertext) <= 4096),
  secret_key_id      text not null check (length(secret_key_id) between 1 and 64),
  secret_last4       text not null check (length(secret_last4) <= 4),
  -- The last probe (write and delete an object): when, and whether it worked.
  checked_at         timestamptz,
  check_status       text check (check_status in ('ok', 'failed')),
  created_at         timestamptz not null default now(),
  updated_at         timestamptz not null default now(),
  check ((checked_at is null) = (check_status is null))
);
create index storage_configs_org on storage_configs (org_id, created_at desc, id desc);

-- One generation job: status, times, storage mode, provider/model, error code and non-sensitive metadata
-- only (redacted by functions/content/redact.ts before it is written). The seed's matrix holds in the
-- table too: own storage is async only, no storage is sync only. storage_config_id is a plain reference,
-- not a foreign key: a job's record outlives the config it used (kept 400 days).
create table content_jobs (
  id                 text primary key,
  org_id             text not null references organizations (id) on delete cascade,
  project_id         text not null references projects (id) on delete cascade,
  kind               text not null check (kind in ('copy', 'image', 'reel_storyboard', 'video')),
  status             text not null check (status in ('queued', 'running', 'succeeded', 'failed')),
  storage_mode       text not null check (storage_mode in ('cloud', 'own', 'none')),
  storage_config_id  text check (length(storage_config_id) <= 64),
  async              boolean not null,
  provider           text check (provider in ('local', 'openai', 'anthropic', 'vertex')),
  model              text check (length(model) between 1 and 100),
  error_code         text check (error_code ~ '^[a-z_]{1,64}$'),
  attempts           integer not null default 0 check (attempts >= 0),
  metadata           jsonb not null default '{}'::jsonb
                     check (jsonb_typeof(metadata) = 'object' and length(metadata::text) <= 4096),
  request_id         text check (length(request_id) <= 128),
  created_at         timestamptz not null default now(),
  started_at         timestamptz,
  finished_at        timestamptz,
  check ((storage_mode = 'own') = (storage_config_id is not null)),
  check (storage_mode <> 'own' or async),
  check (storage_mode <> 'none' or not async),
  check ((status in ('succeeded', 'failed')) = (finished_at is not null)),
  check (status <> 'failed' or error_code is not null)
);
create index content_jobs_project on content_jobs (org_id, project_id, created_at desc, id desc);
-- Retention: job metadata is purged 400 days after creation.
create index content_jobs_created on content_jobs (created_at);
create index content_jobs_open on content_jobs (created_at) where status in ('queued', 'running');

-- One generated output. Where it lives: an object key in our bucket (cloud) or in the partner's bucket
-- (own: the config and bucket named, never a credential). `storage: false` keeps nothing, so it has no
-- row. One container per job at most (the unique index): a workflow step retried after a crash finds the
-- row it wrote instead of adding a second. expires_at is set when the project is archived (+90 days).
create table content_containers (
  id                 text primary key,
  org_id             text not null references organizations (id) on delete cascade,
  project_id         text not null references projects (id) on delete cascade,
  job_id             text references content_jobs (id) on delete set null,
  kind               text not null check (kind in ('copy', 'image', 'reel_storyboard', 'video')),
  storage_mode       text not null check (storage_mode in ('cloud', 'own')),
  storage_config_id  text check (length(storage_config_id) <= 64),
  bucket             text not null check (length(bucket) between 3 and 63),
  object_key         text not null check (length(object_key) between 1 and 1024),
  size_bytes         bigint not null check (size_bytes >= 0),
  sha256             text not null check (sha256 ~ '^[0-9a-f]{64}$'),
  media_type         text not null check (length(media_type) between 1 and 100),
  provider           text not null check (provider in ('local', 'openai', 'anthropic', 'vertex')),
  model              text not null check (length(model) between 1 and 100),
  created_at         timestamptz not null default now(),
  expires_at         timestamptz,
  check ((storage_mode = 'own') = (storage_config_id is not null))
);
create unique index content_containers_job on content_containers (job_id) where job_id is not null;
create index content_containers_project on content_containers (org_id, project_id, created_at desc, id desc);
create index content_containers_expiry on content_containers (expires_at) where expires_at is not null;

-- The org's creative library: an entry built from one or more containers, with its status, and where
-- each project uses it. The containers of an entry are rows (not an array) so deleting a container
-- removes it from every entry that used it.
create table ads_content (
  id          text primary key,
  org_id      text not null references organizations (id) on delete cascade,
  name        text not null check (length(name) between 1 and 200),
  status      text not null default 'draft' check (status in ('draft', 'ready', 'archived')),
  created_at  timestamptz not null default now(),
  updated_at  timestamptz not null default now()
);
create index ads_content_org on ads_content (org_id, created_at desc, id desc);

create table ads_content_containers (
  org_id          text not null references organizations (id) on delete cascade,
  ads_content_id  text not null references ads_content (id) on delete cascade,
  container_id    text not null references content_containers (id) on delete cascade,
  position        integer not null check (position between 0 and 99),
  primary key (ads_content_id, container_id),
  unique (ads_content_id, position)
);
create index ads_content_containers_container on ads_content_containers (container_id);
create index ads_content_containers_org on ads_content_containers (org_id);

create table project_ads_content (
  org_id          text not null references organizations (id) on delete cascade,
  project_id      text not null references projects (id) on delete cascade,
  ads_content_id  text not null references ads_content (id) on delete cascade,
  status          text not null default 'active' check (status in ('active', 'paused')),
  created_at      timestamptz not null default now(),
  updated_at      timestamptz not null default now(),
  primary key (project_id, ads_content_id)
);
create index project_ads_content_org on project_ads_content (org_id, project_id);
create index project_ads_content_ads on project_ads_content (ads_content_id);

do $$
declare
  t text;
begin
  foreach t in array array['project_layers', 'storage_configs', 'content_jobs', 'content_containers',
                            'ads_content', 'ads_content_containers', 'project_ads_content'] loop
    execute format('alter table %I enable row level security', t);
    execute format('alter table %I force row level security', t);
    execute format(
      'create policy tenant_isolation on %I using (org_id = current_setting(''app.org_id'', true)) '
      'with check (org_id = current_setting(''app.org_id'', true))', t);
  end loop;
end
$$;

-- Partner API: layers, storage configs, jobs, containers and the creative library (the workflow that
-- runs jobs will use these grants through the API's role until it gets its own). Jobs are never deleted
-- by the API (their metadata is the 400-day record); containers are (the object with them).
grant select, insert, update on project_layers to layers_api;
grant select, insert, update, delete on storage_configs to layers_api;
grant select, insert, update on content_jobs to layers_api;
grant select, insert, update, delete on content_containers, ads_content, ads_content_containers,
  project_ads_content to layers_api;

-- Maintenance (Cron): retention deletes expired containers (and, for our storage, their objects; media in
-- a partner's bucket is theirs to manage) and job records after 400 days.
grant select, delete on content_jobs, content_containers to layers_maintenance;
