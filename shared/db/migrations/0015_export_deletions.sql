-- The org export (0013) meets project/org deletion (0014) at merge: an export carries the org's project
-- deletions (which projects were deleted, when, by whom, what was erased) and the deleted_at marks of
-- organizations and projects (already readable: the exporter holds select on both tables). org_deletions is
-- not exported (functions/exports/resources.ts says why), so the exporter gets nothing on it.
grant select on project_deletions to layers_exporter;
