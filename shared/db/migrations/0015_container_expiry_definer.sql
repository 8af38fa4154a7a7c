-- The trigger of migration 0012 that gives a container of an archived project its expiry reads projects
-- FOR SHARE. It ran with the rights of the inserting role, and the content Workflow's role
-- (layers_content) has no right on projects (and FOR SHARE would need an UPDATE right besides): every
-- record step failed with "permission denied for table projects". The function now runs with its owner's
-- rights; it reads only archived_at of the new row's project and sets only the new row's expires_at.
alter function content_containers_archived_expiry() security definer;
alter function content_containers_archived_expiry() set search_path = public, pg_temp;
