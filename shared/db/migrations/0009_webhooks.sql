-- Webhooks (Standard Webhooks): the endpoints partners register, the outbox of events produced in the same
-- transaction as the change that causes them, one delivery per (event, endpoint) and the attempt log.
--
-- A change (API key created, project archived, deletion finished, destination failing, …) inserts its
-- webhook_messages row and one pending webhook_deliveries row per matching enabled endpoint inside its own
-- transaction (functions/webhooks/outbox.ts): a rolled-back change leaves no message, a committed one always
-- has its deliveries. The webhooks Worker's sweep then puts undispatched messages on the Queue.

-- The webhooks Worker's own role (the Queue consumer that signs and sends). Cluster-wide: another database
-- of the same server may have created it already.
do $$
begin
  if not exists (select 1 from pg_roles where rolname = 'layers_webhooks') then
    create role layers_webhooks login nosuperuser nobypassrls nocreatedb nocreaterole;
  end if;
end
$$;
grant usage on schema public to layers_webhooks;

-- One partner endpoint. The signing secret (`whsec_` + base64) is AES-256-GCM ciphertext exactly like a
-- destination token (functions/destinations/crypto.ts: the Worker secret DESTINATION_KEYS, the key id beside
-- the ciphertext, AAD binding it to the org and endpoint id). After a rotation the previous secret keeps
-- signing (a second signature in the same header) until previous_secret_expires_at.
create table webhook_endpoints (
  id                           text primary key check (id ~ '^whe_[A-Za-z0-9]{1,64}$'),
  org_id                       text not null references organizations (id) on delete cascade,
  -- Only events of this project (events without a project, like api_key.*, are not sent to it).
  project_id                   text references projects (id) on delete cascade,
  url                          text not null check (length(url) between 1 and 2048),
  description                  text check (length(description) <= 500),
  -- Empty = every event type.
  event_types                  text[] not null default '{}' check (cardinality(event_types) <= 50),
  enabled                      boolean not null default true,
  disabled_reason              text check (disabled_reason in ('manual', 'gone', 'failing')),
  disabled_at                  timestamptz,
  secret_ciphertext            text not null check (length(secret_ciphertext) <= 4096),
  secret_key_id                text not null check (length(secret_key_id) between 1 and 64),
  previous_secret_ciphertext   text check (length(previous_secret_ciphertext) <= 4096),
  previous_secret_key_id       text check (length(previous_secret_key_id) between 1 and 64),
  previous_secret_expires_at   timestamptz,
  -- First failed delivery of the current failure streak (cleared by a success): the disabling rule reads it.
  failing_since                timestamptz,
  created_at                   timestamptz not null default now(),
  updated_at                   timestamptz not null default now(),
  deleted_at                   timestamptz,
  check ((previous_secret_ciphertext is null) = (previous_secret_key_id is null)),
  check ((previous_secret_ciphertext is null) = (previous_secret_expires_at is null)),
  check (enabled or disabled_reason is not null)
);
-- Listing (newest first) and the fan-out's lookup of an org's live endpoints.
create index webhook_endpoints_org on webhook_endpoints (org_id, created_at desc, id desc) where deleted_at is null;

-- The outbox. id is the Standard Webhooks `webhook-id` (stable across retries). payload is thin: ids,
-- statuses, counts, links; never personal data (functions/webhooks/events.ts is the catalogue).
create table webhook_messages (
  id             text primary key check (id ~ '^msg_[A-Za-z0-9]{1,64}$'),
  org_id         text not null references organizations (id) on delete cascade,
  project_id     text references projects (id) on delete cascade,
  event_type     text not null check (event_type ~ '^[a-z_]{1,64}\.[a-z_]{1,64}$'),
  payload        jsonb not null,
  created_at     timestamptz not null default now(),
  -- Set when the message was put on the Queue; null = still to dispatch (the sweep's index below).
  dispatched_at  timestamptz
);
create index webhook_messages_undispatched on webhook_messages (created_at) where dispatched_at is null;
create index webhook_messages_created on webhook_messages (created_at);

-- One message to one endpoint.
create table webhook_deliveries (
  message_id        text not null references webhook_messages (id) on delete cascade,
  endpoint_id       text not null references webhook_endpoints (id) on delete cascade,
  org_id            text not null references organizations (id) on delete cascade,
  status            text not null default 'pending' check (status in ('pending', 'succeeded', 'failed')),
  attempts          integer not null default 0 check (attempts >= 0),
  next_attempt_at   timestamptz not null default now(),
  last_attempt_at   timestamptz,
  last_status_code  integer,
  created_at        timestamptz not null default now(),
  primary key (message_id, endpoint_id)
);
-- An endpoint's messages newest first (GET /v1/webhook-endpoints/{id}/messages).
create index webhook_deliveries_endpoint on webhook_deliveries (endpoint_id, created_at desc, message_id desc);
-- Due retries.
create index webhook_deliveries_due on webhook_deliveries (next_attempt_at) where status = 'pending';

-- Every HTTP attempt, kept 30 days: latency, the receiver's status (or our error code) and the first bytes
-- of its answer with secrets cut.
create table webhook_attempts (
  id                text primary key,
  org_id            text not null references organizations (id) on delete cascade,
  endpoint_id       text not null references webhook_endpoints (id) on delete cascade,
  -- Null for the synchronous `webhook.test` sent by POST /v1/webhook-endpoints/{id}/test (not an outbox message).
  message_id        text references webhook_messages (id) on delete cascade,
  attempted_at      timestamptz not null default now(),
  duration_ms       integer not null check (duration_ms >= 0),
  status_code       integer,
  error_code        text check (length(error_code) <= 64),
  response_excerpt  text check (length(response_excerpt) <= 1024)
);
create index webhook_attempts_endpoint on webhook_attempts (endpoint_id, attempted_at desc, id desc);
create index webhook_attempts_time on webhook_attempts (attempted_at);

do $$
declare
  t text;
begin
  foreach t in array array['webhook_endpoints', 'webhook_messages', 'webhook_deliveries', 'webhook_attempts'] loop
    execute format('alter table %I enable row level security', t);
    execute format('alter table %I force row level security', t);
    execute format(
      'create policy tenant_isolation on %I using (org_id = current_setting(''app.org_id'', true)) '
      'with check (org_id = current_setting(''app.org_id'', true))', t);
  end loop;
end
$$;

-- Emitting an event (functions/webhooks/outbox.ts) reads which endpoints want it — never their secrets —
-- and writes the message and its deliveries. Every role whose changes emit events gets that (the webhooks
-- Worker's role reads whole endpoint rows anyway, below).
grant select (id, org_id, project_id, event_types, enabled, deleted_at) on webhook_endpoints
  to layers_relay, layers_maintenance;
grant insert on webhook_messages, webhook_deliveries to layers_relay, layers_maintenance, layers_webhooks;

-- Partner API: manages endpoints (secrets included: it shows a new one once and signs the test event),
-- reads messages, deliveries and attempts, re-sends a delivery and logs the test send's attempt.
grant select, insert, update on webhook_endpoints to layers_api;
grant select, insert, update on webhook_messages, webhook_deliveries to layers_api;
grant select, insert on webhook_attempts to layers_api;

-- Webhooks Worker: reads endpoints with their secrets to sign, marks messages dispatched, records each
-- delivery's outcome and attempt, disables an endpoint (410 or sustained failure) and audits that.
grant select on webhook_endpoints to layers_webhooks;
grant update (enabled, disabled_reason, disabled_at, failing_since, updated_at) on webhook_endpoints
  to layers_webhooks;
grant select, update (dispatched_at) on webhook_messages to layers_webhooks;
grant select, update on webhook_deliveries to layers_webhooks;
grant select, insert on webhook_attempts to layers_webhooks;
grant insert on audit_log to layers_webhooks;

-- Maintenance (Cron, BYPASSRLS): the outbox sweep dispatches undispatched messages and due retries; the
-- 30-day purge removes attempts, and messages with their deliveries.
grant select, update (dispatched_at), delete on webhook_messages to layers_maintenance;
grant select, update, delete on webhook_deliveries to layers_maintenance;
grant select, delete on webhook_attempts to layers_maintenance;
-- Keyring rotation (scripts/reencrypt-destination-tokens.ts) moves signing secrets to the current key as it
-- does destination tokens: it reads and rewrites only the ciphertexts and their key ids.
grant select (secret_ciphertext, secret_key_id, previous_secret_ciphertext, previous_secret_key_id),
  update (secret_ciphertext, secret_key_id, previous_secret_ciphertext, previous_secret_key_id)
  on webhook_endpoints to layers_maintenance;
