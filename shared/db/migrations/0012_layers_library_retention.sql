-- Issue 14, the partner-facing half: layers enforced outside the API, containers of archived projects
-- expiring, and the keyring rotation reaching storage-config secrets.

-- The attribution layer switched off stops the relay: the consumer (which queues relays after persisting)
-- and the relay Worker (which sends what was queued before the switch) read the project's layer row.
grant select (org_id, project_id, layer, enabled) on project_layers to layers_consumer, layers_relay;

-- A container written for a project that is already archived expires like the ones archiving found: the
-- project's archived_at + 90 days of grace (the seed's rule; functions/retention/policy.ts holds the same
-- number for the archive verb, which sets expires_at on the containers that exist when it archives). A
-- trigger, so every writer of containers (the content workflow, tests, a script) gets it without asking.
-- SECURITY DEFINER: FOR SHARE needs an UPDATE grant on projects, which no writer of containers (the content
-- Worker's layers_content role) should hold just for this read; the function reads one column of the
-- container's own project (RLS still scopes it to app.org_id) and its search_path is pinned.
create function content_containers_archived_expiry() returns trigger
language plpgsql security definer set search_path = public, pg_temp as $$
begin
  if new.expires_at is null then
    -- FOR SHARE: an archive (or unarchive) of the project in flight is waited for and its result read, so
    -- a container inserted while its project is being archived cannot miss the expiry (the archive verb's
    -- own update of the containers runs after this insert commits, or sees it).
    select p.archived_at + interval '90 days' into new.expires_at
    from projects p where p.id = new.project_id for share;
  end if;
  return new;
end
$$;
create trigger content_containers_archived_expiry
  before insert on content_containers
  for each row execute function content_containers_archived_expiry();

-- scripts/reencrypt-destination-tokens.ts moves storage-config secrets to the current key, as it does
-- destination tokens and webhook signing secrets: it reads and rewrites the two sealed columns only.
grant select (id, org_id, secret_ciphertext, secret_key_id) on storage_configs to layers_maintenance;
grant update (secret_ciphertext, secret_key_id) on storage_configs to layers_maintenance;
