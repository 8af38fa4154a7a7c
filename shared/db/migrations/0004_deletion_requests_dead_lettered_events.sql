-- A deletion reaches dead letters in object storage too (functions/deadLetters/erase.ts): the receipt counts
-- the events it removed there. `if not exists`: a database built from the unreleased schema.sql of the time
-- has it.
alter table deletion_requests add column if not exists deleted_dead_lettered_events bigint not null default 0;
