import type { ColumnType } from "kysely";
import type { DestinationKind, DestinationStatus } from "../destinations";

// The column types Postgres cannot tell kysely-codegen: the generated shared/db/types.ts takes these for the
// columns scripts/db-generate.ts names (its `overrides`). A migration that changes one of these columns (a
// check constraint's list of values, a json column's shape) changes its type here.

/** A jsonb object column: read as an object, written as JSON text (a JS array would be sent as a SQL array). */
export type JsonObjectColumn = ColumnType<Record<string, unknown>, string, string>;

/** A jsonb array column, written as JSON text like the object columns. */
export type JsonArrayColumn = ColumnType<unknown[], string, string>;

/**
 * A `json` (not jsonb) column: kept byte for byte, so a replay is the first response exactly. Read as
 * whatever JSON it holds, written as text.
 */
export type JsonTextColumn = ColumnType<unknown, string | null, string | null>;

// Text columns whose check constraint allows these values only.
export type Role = "owner" | "admin" | "developer" | "read_only";
export type ApiKeyMode = "live" | "test";
export type AuditActorType = "api_key" | "member" | "system";
export type IdempotencyState = "in_progress" | "completed";
export type DeletionRequestStatus = "pending" | "running" | "completed" | "failed";
export type SuppressionIdentifierType = "user_id" | "email" | "phone";
export type RelayDeliveryStatus = "delivered" | "retrying" | "rejected" | "dead_lettered" | "skipped";
export type RelayDeadLetterReason = "rejected" | "max_attempts";
export type WebhookDeliveryStatus = "pending" | "succeeded" | "failed";
export type { DestinationKind, DestinationStatus };
// Content generation (migration 0010). The same values as functions/content/providers/types.ts names
// (shared/ cannot import from functions/): a test compares them.
export type ContentKindColumn = "copy" | "image" | "reel_storyboard" | "video";
export type ContentProviderColumn = "local" | "openai" | "anthropic" | "vertex";
export type ProjectLayer = "attribution" | "content";
export type ContentJobStatus = "queued" | "running" | "succeeded" | "failed";
export type ContentStorageMode = "cloud" | "own" | "none";
export type ContainerStorageMode = "cloud" | "own";
export type StorageCheckStatus = "ok" | "failed";
export type AdsContentStatus = "draft" | "ready" | "archived";
export type ProjectAdsContentStatus = "active" | "paused";
/** Nullable columns of those types (an override replaces the whole type, null included). */
export type ContentProviderOrNull = ContentProviderColumn | null;
export type StorageCheckStatusOrNull = StorageCheckStatus | null;
