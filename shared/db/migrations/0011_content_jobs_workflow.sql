-- Content jobs run by a Cloudflare Workflow (issue 14): the request a job was given, kept only while the
-- job can still use it, and the content Worker's own database role.
--
-- The request (brief, product info, references, frames) of a queued or running job is needed by the
-- workflow's steps, which may run minutes later and be retried: it is kept in request_ciphertext,
-- AES-256-GCM under the DESTINATION_KEYS ring (functions/content/jobRequest.ts, bound to the org and the
-- job id like a storage secret), its key id beside it. The check below makes the seed's rule ("request data
-- is not persisted after the job") a property of the table: a succeeded or failed job cannot hold it, so the
-- statement that finishes a job must clear it. A `storage: false` job (synchronous, generated in memory)
-- never stores it at all. This supersedes 0010's "no column below can hold them" for the time a job runs:
-- the ciphertext only, never the plain text.
alter table content_jobs
  add column request_ciphertext text check (length(request_ciphertext) <= 65536),
  add column request_key_id     text check (length(request_key_id) between 1 and 64),
  add constraint content_jobs_request_pair check ((request_ciphertext is null) = (request_key_id is null)),
  add constraint content_jobs_request_only_while_open
    check (status in ('queued', 'running') or request_ciphertext is null);

-- The content Worker (workers/content: the Workflow that runs jobs, and the in-memory generation of
-- `storage: false` jobs) logs in as its own role. Not BYPASSRLS: each step runs in a tenant transaction of
-- the job's org. Roles are cluster-wide: another database of the same server may have created it already.
-- 0010 said the workflow would use the API's grants until it had its own: these are its own.
do $$
begin
  if not exists (select 1 from pg_roles where rolname = 'layers_content') then
    create role layers_content login nosuperuser nobypassrls nocreatedb nocreaterole;
  end if;
end
$$;
grant usage on schema public to layers_content;

-- A job: read it (the sealed request included) and move it along — running, then succeeded or failed with
-- provider, model, error code, metadata, and the request cleared. Never insert or delete one.
grant select on content_jobs to layers_content;
grant update (status, provider, model, error_code, attempts, metadata, started_at, finished_at,
  request_ciphertext, request_key_id) on content_jobs to layers_content;
-- Its container: the one row the record step writes (the unique index on job_id stops a second), and the
-- earlier containers a job references (their text is read back for the prompt).
grant select, insert on content_containers to layers_content;
-- Own storage: the partner's bucket and its sealed secret, read only (never the name or check columns).
grant select (id, org_id, endpoint, region, bucket, prefix, force_path_style, access_key_id,
  secret_ciphertext, secret_key_id) on storage_configs to layers_content;
-- content_job.succeeded / content_job.failed go to the outbox in the transaction that finishes the job.
grant select (id, org_id, project_id, event_types, enabled, deleted_at) on webhook_endpoints to layers_content;
grant insert on webhook_messages, webhook_deliveries to layers_content;
