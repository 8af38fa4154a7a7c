import type { ColumnType, Generated } from "kysely";

// Kysely's view of schema.sql; keep the two in step (the integration tests read every column back).

type Timestamp = ColumnType<Date, Date | string, Date | string>;
type Json = ColumnType<Record<string, unknown>, string, string>;

export interface OrganizationsTable {
  id: string;
  name: string;
  created_at: Generated<Date>;
}

export interface ProjectsTable {
  id: string;
  org_id: string;
  name: string;
  event_retention_days: Generated<number>;
  archived_at: Timestamp | null;
  created_at: Generated<Date>;
  updated_at: Generated<Date>;
}

export interface SdkKeysTable {
  id: string;
  org_id: string;
  project_id: string;
  key_sha256: string;
  display_prefix: string;
  created_at: Generated<Date>;
  revoked_at: Timestamp | null;
}

export interface SdkEventsTable {
  org_id: string;
  project_id: string;
  event_id: string;
  name: string;
  user_id: string | null;
  ts: Timestamp;
  received_at: Timestamp;
  app_id: string | null;
  os: string | null;
  os_version: string | null;
  device_model: string | null;
  browser: string | null;
  country: string | null;
  region: string | null;
  email_sha256: string | null;
  phone_sha256: string | null;
  properties: Json;
}

export interface SdkUsersTable {
  org_id: string;
  project_id: string;
  user_id: string;
  properties: Json;
  property_times: Json;
  first_seen_at: Timestamp;
  last_seen_at: Timestamp;
  email_sha256: string | null;
  email_sha256_at: Timestamp | null;
  phone_sha256: string | null;
  phone_sha256_at: Timestamp | null;
}

export interface EventDailyCountsTable {
  org_id: string;
  project_id: string;
  day: ColumnType<string, string, string>;
  event_name: string;
  country: string;
  count: ColumnType<string, number, number>;
}

export type Role = "owner" | "admin" | "developer" | "read_only";

export interface MembersTable {
  id: string;
  org_id: string;
  email: string;
  name: string | null;
  role: Role;
  created_at: Generated<Date>;
  updated_at: Generated<Date>;
}

export interface ApiKeysTable {
  id: string;
  org_id: string;
  name: string;
  role: Role;
  project_id: string | null;
  mode: "live" | "test";
  key_sha256: string;
  display_prefix: string;
  created_at: Timestamp;
  expires_at: Timestamp | null;
  revoked_at: Timestamp | null;
  rotated_to: string | null;
}

export interface AuditLogTable {
  id: string;
  org_id: string;
  occurred_at: Timestamp;
  actor_type: "api_key" | "member" | "system";
  actor_id: string;
  action: string;
  resource_type: string;
  resource_id: string;
  request_id: string | null;
  changes: Json;
}

export interface IdempotencyKeysTable {
  org_id: string;
  /** The API key that sent it: the scope is org + API key + Idempotency-Key. */
  api_key_id: string;
  idempotency_key: string;
  request_sha256: string;
  state: "in_progress" | "completed";
  response_status: number | null;
  response_body: ColumnType<unknown, string | null, string | null>;
  created_at: Timestamp;
  completed_at: Timestamp | null;
}

export interface RequestLogsTable {
  request_id: string;
  org_id: string;
  api_key_id: string;
  method: string;
  route: string;
  status: number;
  latency_ms: number;
  occurred_at: Timestamp;
  /** The caller's X-Request-Id when it had the allowed shape; request_id is always ours. */
  client_request_id: string | null;
}

/** Conversion-relay destinations (schema.sql "Destinations"); the token only ever as ciphertext. */
export interface DestinationsTable {
  org_id: string;
  project_id: string;
  kind: "meta" | "tiktok" | "apple-search-ads";
  enabled: boolean;
  status: "active" | "failing";
  config: Json;
  token_ciphertext: string | null;
  token_key_id: string | null;
  token_last4: string | null;
  created_at: Timestamp;
  updated_at: Timestamp;
  failing_since: Timestamp | null;
}

/** Data-subject deletion requests (schema.sql "Data-subject requests"): the receipt keeps only digests. */
export interface DeletionRequestsTable {
  id: string;
  org_id: string;
  project_id: string;
  user_id: string | null;
  user_id_sha256: string | null;
  email_sha256: string | null;
  phone_sha256: string | null;
  subject_sha256: string;
  suppress: boolean;
  status: "pending" | "running" | "completed" | "failed";
  deleted_events: ColumnType<string, number | undefined, number | string>;
  deleted_users: ColumnType<string, number | undefined, number | string>;
  deleted_attributions: ColumnType<string, number | undefined, number | string>;
  deleted_dead_letters: ColumnType<string, number | undefined, number | string>;
  deleted_dead_lettered_events: ColumnType<string, number | undefined, number | string>;
  /** When the run working on the request last made progress; null when no run holds it. */
  heartbeat_at: Timestamp | null;
  attempts: Generated<number>;
  failure_reason: string | null;
  requested_at: Timestamp;
  started_at: Timestamp | null;
  finished_at: Timestamp | null;
  request_id: string | null;
  requested_by: string;
}

/** Identifiers whose events are dropped at ingest until the partner lifts the suppression. */
export interface SuppressionsTable {
  org_id: string;
  project_id: string;
  identifier_type: "user_id" | "email" | "phone";
  identifier_sha256: string;
  deletion_request_id: string | null;
  created_at: Timestamp;
}

/** Relay delivery log (schema.sql "Relay"), one row per batch, kept 30 days. */
export interface RelayDeliveriesTable {
  org_id: string;
  project_id: string;
  batch_id: string;
  destination: "meta" | "tiktok" | "apple-search-ads";
  event_count: number;
  sent_count: number;
  skipped: Json;
  status: "delivered" | "retrying" | "rejected" | "dead_lettered" | "skipped";
  attempts: number;
  response_code: number | null;
  error: string | null;
  first_attempt_at: Timestamp;
  last_attempt_at: Timestamp;
}

/** Dead-lettered relay batches (events without device ids), replayable. */
export interface RelayDeadLettersTable {
  org_id: string;
  project_id: string;
  batch_id: string;
  destination: "meta" | "tiktok" | "apple-search-ads";
  reason: "rejected" | "max_attempts";
  response_code: number | null;
  error: string | null;
  events: ColumnType<unknown[], string, string>;
  dead_at: Timestamp;
  replayed_at: Timestamp | null;
}

/** Apple Search Ads attribution record per end user. */
export interface AppleAttributionsTable {
  org_id: string;
  project_id: string;
  user_id: string;
  event_id: string;
  attribution: boolean;
  apple_org_id: ColumnType<string | null, number | null, number | null>;
  campaign_id: ColumnType<string | null, number | null, number | null>;
  ad_group_id: ColumnType<string | null, number | null, number | null>;
  keyword_id: ColumnType<string | null, number | null, number | null>;
  ad_id: ColumnType<string | null, number | null, number | null>;
  claim_type: string | null;
  conversion_type: string | null;
  country_or_region: string | null;
  attributed_at: Timestamp;
}

export interface Database {
  organizations: OrganizationsTable;
  projects: ProjectsTable;
  sdk_keys: SdkKeysTable;
  sdk_events: SdkEventsTable;
  sdk_users: SdkUsersTable;
  event_daily_counts: EventDailyCountsTable;
  members: MembersTable;
  api_keys: ApiKeysTable;
  audit_log: AuditLogTable;
  idempotency_keys: IdempotencyKeysTable;
  request_logs: RequestLogsTable;
  deletion_requests: DeletionRequestsTable;
  suppressions: SuppressionsTable;
  destinations: DestinationsTable;
  relay_deliveries: RelayDeliveriesTable;
  relay_dead_letters: RelayDeadLettersTable;
  apple_attributions: AppleAttributionsTable;
}
