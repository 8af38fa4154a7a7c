-- Retention walks each project's user state and Apple attributions by time (functions/retention).
-- `if not exists`: a database built from the unreleased schema.sql of the time has them.
create index if not exists sdk_users_project_seen on sdk_users (project_id, last_seen_at);
create index if not exists apple_attributions_project_time on apple_attributions (project_id, attributed_at);
