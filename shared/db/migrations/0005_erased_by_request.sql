-- The one erasure rule, used by the consumer before storing an event and by the relay before sending,
-- storing an attribution or a dead letter, and by dead-letter replay: an event is erased when its user id
-- (as SHA-256), email or phone digest is named by a deletion request of its project made at or after the
-- event was received (any status: a completed request must not be undone by a late message), or by an
-- active suppression. Invoker's rights: RLS and the caller's grants apply. Written as one expression so
-- the planner inlines it.
create or replace function erased_by_request(p_project_id text, p_received_at timestamptz, p_user_id text,
  p_email_sha256 text, p_phone_sha256 text)
returns boolean
language sql
stable
as $$
  select exists (
      select 1 from deletion_requests d
      where d.project_id = p_project_id and d.requested_at >= p_received_at
        and (d.user_id_sha256 = encode(sha256(convert_to(p_user_id, 'UTF8')), 'hex')
          or d.email_sha256 = p_email_sha256 or d.phone_sha256 = p_phone_sha256))
    or exists (
      select 1 from suppressions s
      where s.project_id = p_project_id
        and ((s.identifier_type = 'user_id' and s.identifier_sha256 = encode(sha256(convert_to(p_user_id, 'UTF8')), 'hex'))
          or (s.identifier_type = 'email' and s.identifier_sha256 = p_email_sha256)
          or (s.identifier_type = 'phone' and s.identifier_sha256 = p_phone_sha256)))
$$;
revoke all on function erased_by_request(text, timestamptz, text, text, text) from public;
