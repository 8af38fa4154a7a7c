// One error type for every Worker. The code set is closed: a partner can switch on `code` safely.
// Body shape everywhere: { "error": { "type", "code", "message", "requestId", "docs"?, "details"? } }.

export type ErrorType =
  | "invalid_request_error"
  | "authentication_error"
  | "permission_error"
  | "not_found_error"
  | "rate_limit_error"
  | "api_error";

export const ERROR_CODES = {
  invalid_json: { status: 400, type: "invalid_request_error" },
  invalid_body: { status: 400, type: "invalid_request_error" },
  too_many_events: { status: 400, type: "invalid_request_error" },
  invalid_events: { status: 400, type: "invalid_request_error" },
  invalid_request: { status: 400, type: "invalid_request_error" },
  invalid_idempotency_key: { status: 400, type: "invalid_request_error" },
  /** Segment-compatible ingest: Segment documents 400 (not 413) for a message over 32 KB… */
  message_too_large: { status: 400, type: "invalid_request_error" },
  /** …and for a batch request over 500 KB. */
  batch_too_large: { status: 400, type: "invalid_request_error" },
  /** A webhook URL the SSRF guard refuses; details[0].reason names the class (functions/webhooks/ssrf.ts). */
  webhook_url_refused: { status: 400, type: "invalid_request_error" },
  /** A content job's storage × sync/async combination the seed's matrix refuses (functions/content/storageMode.ts). */
  storage_mode_not_allowed: { status: 400, type: "invalid_request_error" },
  /** A destructive call whose confirmation (the org's name) does not match. */
  confirmation_mismatch: { status: 400, type: "invalid_request_error" },
  unauthorized: { status: 401, type: "authentication_error" },
  project_archived: { status: 403, type: "permission_error" },
  forbidden: { status: 403, type: "permission_error" },
  not_found: { status: 404, type: "not_found_error" },
  method_not_allowed: { status: 405, type: "invalid_request_error" },
  conflict: { status: 409, type: "invalid_request_error" },
  idempotency_key_in_use: { status: 409, type: "invalid_request_error" },
  /** The project has the product layer the call needs switched off (functions/projects/layers.ts). */
  layer_disabled: { status: 409, type: "invalid_request_error" },
  /** Changing a project whose deletion was requested (functions/projects/verbs.ts changeableProject). */
  project_deletion_pending: { status: 409, type: "invalid_request_error" },
  /** Deleting a project that is not archived yet: archive it first. */
  project_not_archived: { status: 409, type: "invalid_request_error" },
  /** Deleting a storage config that a queued or running content job writes to. */
  storage_config_in_use: { status: 409, type: "invalid_request_error" },
  /** Creating a storage config past the per-org limit (functions/storageConfigs/verbs.ts). */
  storage_config_limit_reached: { status: 409, type: "invalid_request_error" },
  payload_too_large: { status: 413, type: "invalid_request_error" },
  unsupported_media_type: { status: 415, type: "invalid_request_error" },
  idempotency_key_reused: { status: 422, type: "invalid_request_error" },
  /** Test-send of a destination that has no synthetic event (Apple Search Ads needs a real device token). */
  test_send_unsupported: { status: 422, type: "invalid_request_error" },
  /** A content job the model provider could not complete (details name the provider's error code). */
  content_generation_failed: { status: 422, type: "invalid_request_error" },
  /** Replay of Apple Search Ads dead letters: their AdServices tokens are never stored, so nothing to resend. */
  replay_unsupported: { status: 422, type: "invalid_request_error" },
  rate_limited: { status: 429, type: "rate_limit_error" },
  internal_error: { status: 500, type: "api_error" },
  queue_unavailable: { status: 503, type: "api_error" },
  /** Object storage (ours or a partner's bucket) did not answer. */
  storage_unavailable: { status: 503, type: "api_error" },
  /** A content job could not be started: the content Worker or its Workflow did not answer (job failed). */
  content_unavailable: { status: 503, type: "api_error" },
  database_unavailable: { status: 503, type: "api_error" },
  /** The destination-token keyring is missing or lacks the key a stored token was written with. */
  destination_keys_unavailable: { status: 503, type: "api_error" },
} as const satisfies Record<string, { status: number; type: ErrorType }>;

export type ErrorCode = keyof typeof ERROR_CODES;

/** Per-event rejection codes inside a 202 ingest answer (the event is skipped, the batch is not). */
export type EventRejectionCode = "invalid_event" | "event_too_large" | "timestamp_too_old";

export const DOCS_BASE = "https://docs.layers.com/errors#";

export class ApiError extends Error {
  readonly code: ErrorCode;
  readonly details: unknown;
  readonly headers: Record<string, string>;

  constructor(
    code: ErrorCode,
    message: string,
    options: { details?: unknown; headers?: Record<string, string> } = {},
  ) {
    super(message);
    this.name = "ApiError";
    this.code = code;
    this.details = options.details;
    this.headers = options.headers ?? {};
  }

  get status(): number {
    return ERROR_CODES[this.code].status;
  }
}

export interface ErrorBody {
  error: {
    type: ErrorType;
    code: ErrorCode;
    message: string;
    requestId: string;
    docs: string;
    details?: unknown;
  };
}

export function errorBody(error: ApiError, requestId: string): ErrorBody {
  return {
    error: {
      type: ERROR_CODES[error.code].type,
      code: error.code,
      message: error.message,
      requestId,
      docs: DOCS_BASE + error.code,
      ...(error.details === undefined ? {} : { details: error.details }),
    },
  };
}
