import type { DB } from "../../shared/db/types";

/**
 * What an org export carries, table by table: every tenant table (a table with an org_id column) is either
 * a resource here or on EXCLUDED_TABLES with the reason, and every column of a resource's table is either
 * exported or in `omitted` with the reason. test/integration/exports/coverage.test.ts reads the database
 * catalogue and fails on a table or column that is neither, so a new table or a new secret column cannot
 * slip into (or out of) the archive unnoticed.
 */
export interface ExportResource {
  /** The archive member is `<name>.ndjson.gz`. */
  name: string;
  table: keyof DB & string;
  /** Exported columns, in this order (an allow-list: a column added later is not exported until named). */
  columns: readonly string[];
  /** Columns deliberately left out, each with why. */
  omitted?: Readonly<Record<string, string>>;
  /** A unique key of the table, the order rows are paged in (keyset pagination). */
  key: readonly string[];
  /** The column holding the org (organizations: its id). */
  orgColumn: "org_id" | "id";
  /**
   * How the `projects` option narrows the resource: "project" keeps rows of the named projects; "optional"
   * keeps those and org-wide rows (project_id null); "org" rows are the org's and always exported whole.
   */
  scope: "org" | "project" | "optional";
  /** The column naming the project, where it is not project_id (projects: its id). */
  projectColumn?: "id";
  /** Only with includeEvents: end users' events and state. */
  events?: boolean;
}

const SECRET_HASH =
  "SHA-256 of a secret: useless to the partner, and a verifier an attacker could test guesses against";
const CIPHERTEXT =
  "an encrypted credential: never leaves the platform (the last four characters are exported)";
const KEY_ID = "which platform key encrypts the credential: internal";

export const EXPORT_RESOURCES: readonly ExportResource[] = [
  {
    name: "org",
    table: "organizations",
    // deleted_at: set while the org's deletion is under way (an export then shows the org as marked).
    columns: ["id", "name", "created_at", "deleted_at"],
    key: ["id"],
    orgColumn: "id",
    scope: "org",
  },
  {
    name: "projects",
    table: "projects",
    // deleted_at: set while the project's deletion is under way.
    columns: [
      "id",
      "org_id",
      "name",
      "event_retention_days",
      "archived_at",
      "created_at",
      "updated_at",
      "deleted_at",
    ],
    key: ["id"],
    orgColumn: "org_id",
    scope: "project",
    projectColumn: "id",
  },
  {
    name: "project_layers",
    table: "project_layers",
    columns: ["org_id", "project_id", "layer", "enabled", "settings", "created_at", "updated_at"],
    key: ["project_id", "layer"],
    orgColumn: "org_id",
    scope: "project",
  },
  {
    name: "members",
    table: "members",
    columns: ["id", "org_id", "email", "name", "role", "created_at", "updated_at"],
    key: ["id"],
    orgColumn: "org_id",
    scope: "org",
  },
  {
    name: "api_keys",
    table: "api_keys",
    columns: [
      "id",
      "org_id",
      "name",
      "role",
      "project_id",
      "mode",
      "display_prefix",
      "created_at",
      "expires_at",
      "revoked_at",
      "rotated_to",
    ],
    omitted: { key_sha256: SECRET_HASH },
    key: ["id"],
    orgColumn: "org_id",
    scope: "optional",
  },
  {
    name: "sdk_keys",
    table: "sdk_keys",
    columns: ["id", "org_id", "project_id", "display_prefix", "created_at", "revoked_at"],
    omitted: { key_sha256: SECRET_HASH },
    key: ["id"],
    orgColumn: "org_id",
    scope: "project",
  },
  {
    name: "destinations",
    table: "destinations",
    columns: [
      "org_id",
      "project_id",
      "kind",
      "enabled",
      "status",
      "config",
      "token_last4",
      "created_at",
      "updated_at",
      "failing_since",
    ],
    omitted: { token_ciphertext: CIPHERTEXT, token_key_id: KEY_ID },
    key: ["project_id", "kind"],
    orgColumn: "org_id",
    scope: "project",
  },
  {
    name: "webhook_endpoints",
    table: "webhook_endpoints",
    columns: [
      "id",
      "org_id",
      "project_id",
      "url",
      "description",
      "event_types",
      "enabled",
      "disabled_reason",
      "disabled_at",
      "previous_secret_expires_at",
      "failing_since",
      "created_at",
      "updated_at",
      "deleted_at",
    ],
    omitted: {
      secret_ciphertext: CIPHERTEXT,
      secret_key_id: KEY_ID,
      previous_secret_ciphertext: CIPHERTEXT,
      previous_secret_key_id: KEY_ID,
    },
    key: ["id"],
    orgColumn: "org_id",
    scope: "optional",
  },
  {
    name: "webhook_messages",
    table: "webhook_messages",
    columns: ["id", "org_id", "project_id", "event_type", "payload", "created_at", "dispatched_at"],
    key: ["id"],
    orgColumn: "org_id",
    scope: "optional",
  },
  {
    name: "webhook_deliveries",
    table: "webhook_deliveries",
    columns: [
      "message_id",
      "endpoint_id",
      "org_id",
      "status",
      "attempts",
      "next_attempt_at",
      "last_attempt_at",
      "last_status_code",
      "created_at",
    ],
    key: ["message_id", "endpoint_id"],
    orgColumn: "org_id",
    scope: "org",
  },
  {
    name: "webhook_attempts",
    table: "webhook_attempts",
    columns: [
      "id",
      "org_id",
      "endpoint_id",
      "message_id",
      "attempted_at",
      "duration_ms",
      "status_code",
      "error_code",
      "response_excerpt",
    ],
    key: ["id"],
    orgColumn: "org_id",
    scope: "org",
  },
  {
    name: "storage_configs",
    table: "storage_configs",
    columns: [
      "id",
      "org_id",
      "name",
      "endpoint",
      "region",
      "bucket",
      "prefix",
      "force_path_style",
      "access_key_id",
      "secret_last4",
      "checked_at",
      "check_status",
      "created_at",
      "updated_at",
    ],
    omitted: {
      secret_ciphertext: CIPHERTEXT,
      secret_key_id: KEY_ID,
    },
    key: ["id"],
    orgColumn: "org_id",
    scope: "org",
  },
  {
    name: "content_jobs",
    table: "content_jobs",
    columns: [
      "id",
      "org_id",
      "project_id",
      "kind",
      "status",
      "storage_mode",
      "storage_config_id",
      "async",
      "provider",
      "model",
      "error_code",
      "attempts",
      "metadata",
      "request_id",
      "created_at",
      "started_at",
      "finished_at",
    ],
    // The sealed request exists only while a job runs (the seed: request data is not kept after the job).
    omitted: { request_ciphertext: CIPHERTEXT, request_key_id: KEY_ID },
    key: ["id"],
    orgColumn: "org_id",
    scope: "project",
  },
  {
    name: "content_containers",
    table: "content_containers",
    columns: [
      "id",
      "org_id",
      "project_id",
      "job_id",
      "kind",
      "storage_mode",
      "storage_config_id",
      "bucket",
      "object_key",
      "size_bytes",
      "sha256",
      "media_type",
      "provider",
      "model",
      "created_at",
      "expires_at",
    ],
    key: ["id"],
    orgColumn: "org_id",
    scope: "project",
  },
  {
    name: "ads_content",
    table: "ads_content",
    columns: ["id", "org_id", "name", "status", "created_at", "updated_at"],
    key: ["id"],
    orgColumn: "org_id",
    scope: "org",
  },
  {
    name: "ads_content_containers",
    table: "ads_content_containers",
    columns: ["org_id", "ads_content_id", "container_id", "position"],
    key: ["ads_content_id", "container_id"],
    orgColumn: "org_id",
    scope: "org",
  },
  {
    name: "project_ads_content",
    table: "project_ads_content",
    columns: ["org_id", "project_id", "ads_content_id", "status", "created_at", "updated_at"],
    key: ["project_id", "ads_content_id"],
    orgColumn: "org_id",
    scope: "project",
  },
  {
    name: "deletion_requests",
    table: "deletion_requests",
    columns: [
      "id",
      "org_id",
      "project_id",
      "user_id",
      "user_id_sha256",
      "email_sha256",
      "phone_sha256",
      "subject_sha256",
      "anonymous_id_sha256s",
      "suppress",
      "status",
      "deleted_events",
      "deleted_users",
      "deleted_attributions",
      "deleted_dead_letters",
      "deleted_dead_lettered_events",
      "attempts",
      "failure_reason",
      "requested_at",
      "started_at",
      "finished_at",
      "heartbeat_at",
      "request_id",
      "requested_by",
    ],
    key: ["id"],
    orgColumn: "org_id",
    scope: "project",
  },
  {
    // The org's project deletions: which project went, when, by whom, and the rows and objects erased per
    // table and bucket (names and counts only). Scope "org": the project itself no longer exists, so it
    // could never be named in `projects`; the record is the org's.
    name: "project_deletions",
    table: "project_deletions",
    columns: [
      "id",
      "org_id",
      "project_id",
      "status",
      "counts",
      "attempts",
      "failure_code",
      "requested_at",
      "requested_by",
      "request_id",
      "started_at",
      "heartbeat_at",
      "finished_at",
    ],
    omitted: {
      step: "the cascade's internal resume position (which table or bucket it was working on)",
      cursors: "the cascade's internal resume position: the last object key listed in our own buckets",
    },
    key: ["id"],
    orgColumn: "org_id",
    scope: "org",
  },
  {
    name: "suppressions",
    table: "suppressions",
    columns: [
      "org_id",
      "project_id",
      "identifier_type",
      "identifier_sha256",
      "deletion_request_id",
      "created_at",
    ],
    key: ["project_id", "identifier_type", "identifier_sha256"],
    orgColumn: "org_id",
    scope: "project",
  },
  {
    name: "audit_log",
    table: "audit_log",
    columns: [
      "id",
      "org_id",
      "occurred_at",
      "actor_type",
      "actor_id",
      "action",
      "resource_type",
      "resource_id",
      "request_id",
      "changes",
    ],
    key: ["id"],
    orgColumn: "org_id",
    scope: "org",
  },
  {
    name: "request_logs",
    table: "request_logs",
    columns: [
      "request_id",
      "org_id",
      "api_key_id",
      "method",
      "route",
      "status",
      "latency_ms",
      "occurred_at",
      "client_request_id",
    ],
    key: ["request_id"],
    orgColumn: "org_id",
    scope: "org",
  },
  {
    name: "relay_deliveries",
    table: "relay_deliveries",
    columns: [
      "org_id",
      "project_id",
      "batch_id",
      "destination",
      "event_count",
      "sent_count",
      "skipped",
      "status",
      "attempts",
      "response_code",
      "error",
      "first_attempt_at",
      "last_attempt_at",
    ],
    key: ["batch_id"],
    orgColumn: "org_id",
    scope: "project",
  },
  {
    name: "event_daily_counts",
    table: "event_daily_counts",
    columns: ["org_id", "project_id", "day", "event_name", "country", "count"],
    key: ["project_id", "day", "event_name", "country"],
    orgColumn: "org_id",
    scope: "project",
  },
  // End users' data: only with includeEvents.
  {
    name: "events",
    table: "sdk_events",
    columns: [
      "org_id",
      "project_id",
      "event_id",
      "name",
      "user_id",
      "anonymous_id",
      "ts",
      "received_at",
      "app_id",
      "os",
      "os_version",
      "device_model",
      "browser",
      "country",
      "region",
      "email_sha256",
      "phone_sha256",
      "properties",
    ],
    key: ["project_id", "event_id"],
    orgColumn: "org_id",
    scope: "project",
    events: true,
  },
  {
    name: "users",
    table: "sdk_users",
    columns: [
      "org_id",
      "project_id",
      "user_id",
      "properties",
      "property_times",
      "first_seen_at",
      "last_seen_at",
      "email_sha256",
      "email_sha256_at",
      "phone_sha256",
      "phone_sha256_at",
    ],
    key: ["project_id", "user_id"],
    orgColumn: "org_id",
    scope: "project",
    events: true,
  },
  {
    name: "identity_links",
    table: "sdk_identity_links",
    columns: ["org_id", "project_id", "anonymous_id", "user_id", "first_seen_at", "linked_at"],
    key: ["project_id", "anonymous_id", "user_id"],
    orgColumn: "org_id",
    scope: "project",
    events: true,
  },
  {
    name: "apple_attributions",
    table: "apple_attributions",
    columns: [
      "org_id",
      "project_id",
      "user_id",
      "event_id",
      "attribution",
      "apple_org_id",
      "campaign_id",
      "ad_group_id",
      "keyword_id",
      "ad_id",
      "claim_type",
      "conversion_type",
      "country_or_region",
      "attributed_at",
    ],
    key: ["project_id", "user_id"],
    orgColumn: "org_id",
    scope: "project",
    events: true,
  },
  {
    // Relay batches that could not be delivered: they hold the events themselves.
    name: "relay_dead_letters",
    table: "relay_dead_letters",
    columns: [
      "org_id",
      "project_id",
      "batch_id",
      "destination",
      "reason",
      "response_code",
      "error",
      "events",
      "dead_at",
      "replayed_at",
    ],
    key: ["batch_id"],
    orgColumn: "org_id",
    scope: "project",
    events: true,
  },
];

/** Tenant tables an export leaves out on purpose, each with why. */
export const EXCLUDED_TABLES: Readonly<Record<string, string>> = {
  // Request de-duplication state with a 24-hour life; its stored answers are the API's own envelopes, not
  // partner data, and some once carried a secret shown once.
  idempotency_keys: "transient request de-duplication state (24 h), not partner data",
  // The export jobs themselves: listed by GET /v1/org/exports; an archive describing its own unfinished job
  // would be stale the moment it is written.
  org_exports: "the export jobs themselves (GET /v1/org/exports lists them)",
  // Bookkeeping of where cold audit rows live; the rows themselves are exported as audit_log_archived.
  audit_archive_objects: "index of the cold audit archive; its rows are exported as audit_log_archived",
  // The receipt of the org's own deletion: it is written when the org asks to be deleted and outlives the org
  // (its org_id is cleared on completion; it is read with its one-time token). While the org lives there is
  // at most a pending deletion, whose state the org reads through the receipt itself; it is not the org's
  // data, and an archive made during the deletion would be erased with the org anyway.
  org_deletions: "the receipt of the org's own deletion: outlives the org, read with its one-time token",
};

/** The cold audit archive's rows (functions/archive), a file of their own: `audit_log_archived.ndjson.gz`. */
export const COLD_AUDIT_FILE = "audit_log_archived";

/** Bumped when a file's shape changes in a way a reader must know about. */
export const EXPORT_SCHEMA_VERSION = 1;

/**
 * Every bucket of ours, and what an export does with it (keyed by the bucket's default name; the coverage
 * test compares this with the buckets the system configures).
 */
export const EXPORT_BUCKETS: Readonly<Record<string, { exported: boolean; how: string }>> = {
  "layers-audit-archive": { exported: true, how: `the org's cold audit rows, as ${COLD_AUDIT_FILE}` },
  "layers-media": {
    exported: true,
    how: "generated media of cloud-stored containers, as media/<containerId>",
  },
  "layers-exports": { exported: false, how: "the export archives themselves" },
  "layers-dead-letters": {
    exported: false,
    how:
      "transient copies of event batches that could not be stored yet (redriven within hours, then " +
      "deleted); the events are exported once stored",
  },
};
