-- Org exports meet deletion (issue 15 review). Which exports the exporter Cron job advances (0013's
-- due_org_exports), two changes:
-- - an export of an org marked for deletion is not due: claiming it is refused anyway (runExport.ts), and
--   left in the list it would take one of the run's slots until the cascade erased its row, hours for a
--   large org; ten of them would stop every other org's export;
-- - exports that are held (a runner's heartbeat within the lease) or waiting to retry after a failed run
--   (heartbeat set ahead, see runExport.ts) come after the ones that can run now, oldest first in each group.
create or replace function due_org_exports(p_limit integer)
returns table (id text, org_id text)
language sql stable security definer
set search_path = public, pg_temp
as $$
  select e.id, e.org_id from org_exports e
  where e.status in ('queued', 'running')
    and not exists (select 1 from organizations o where o.id = e.org_id and o.deleted_at is not null)
  -- 300 s: EXPORT_LEASE_SECONDS (functions/exports/lifetimes.ts).
  order by coalesce(e.heartbeat_at > now() - interval '300 seconds', false), e.created_at, e.id
  limit least(greatest(p_limit, 0), 100)
$$;

-- A completed deletion request withdraws the org's exports that may hold the subject's events (status
-- expired, error_code withdrawn_by_deletion; functions/deletionRequests/executeDeletions.ts): the
-- maintenance role, which runs it, may now set the error code too.
grant update (error_code) on org_exports to layers_maintenance;
