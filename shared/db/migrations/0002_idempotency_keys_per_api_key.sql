-- Idempotency-Key records are scoped to org + the API key that sent it + Idempotency-Key, so another key of
-- the org can neither replay nor block a request. The record stays what it was: a hash of the request
-- (method, path with query string, body) and the replay envelope, never a secret (a replayed key creation
-- shows `secret: null`), kept 24 h.
--
-- Records from before the per-key scope cannot be attributed to a key; they are a 24-hour cache, so they go
-- (a client retrying one of those requests gets it run once more, as after the cache expired).
-- `if not exists`: a database built from the unreleased schema.sql of the time already has the column.
alter table idempotency_keys add column if not exists api_key_id text;
delete from idempotency_keys where api_key_id is null;
alter table idempotency_keys alter column api_key_id set not null;
alter table idempotency_keys drop constraint idempotency_keys_pkey;
alter table idempotency_keys add primary key (org_id, api_key_id, idempotency_key);
