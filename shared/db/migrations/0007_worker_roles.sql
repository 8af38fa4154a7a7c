-- One login role per Worker instead of the single `layers_app` of the baseline, each granted only what its
-- Worker does. None is superuser; only the Cron Worker's role (layers_maintenance, from the baseline)
-- bypasses RLS, because its jobs span orgs; none owns a table, so row-level security always applies to the
-- four application roles. Roles are cluster-wide: another database of the same server may have created
-- them already. The README's "Database roles" table is the grant list below; test/integration/roles.test.ts
-- compares it with the catalog.
do $$
declare
  r text;
begin
  foreach r in array array['layers_ingest', 'layers_consumer', 'layers_relay', 'layers_api'] loop
    if not exists (select 1 from pg_roles where rolname = r) then
      execute format('create role %I login nosuperuser nobypassrls nocreatedb nocreaterole', r);
    end if;
  end loop;
end
$$;

-- Everything is revoked first, so the grants below are exactly what each role holds, whatever the database
-- held before (the baseline's broad grants to layers_app and layers_maintenance included).
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
  -- The single role of earlier releases keeps nothing in this database (it is left in place: roles are
  -- cluster-wide and it may still serve another database).
  if exists (select 1 from pg_roles where rolname = 'layers_app') then
    revoke all on all tables in schema public from layers_app;
    revoke all on all functions in schema public from layers_app;
    revoke usage on schema public from layers_app;
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
