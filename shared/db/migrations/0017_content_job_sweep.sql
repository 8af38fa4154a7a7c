-- The content-retention Cron job (layers_maintenance) fails content jobs left open past 24 h as
-- `abandoned` (functions/retention/contentJobSweep.ts): a Workflow that gave up while the database was
-- gone can no longer close its own job, which would otherwise keep its sealed request and show "running"
-- forever. It writes what failing a job writes, nothing else.
grant update (status, finished_at, request_ciphertext, request_key_id, metadata, error_code)
  on content_jobs to layers_maintenance;
