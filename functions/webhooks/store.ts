import { sql } from "kysely";
import type { Db } from "../../shared/db";
import { newestFirstPage } from "../../shared/db/newestFirstPage";
import type { Keyring } from "../../shared/destinations";
import type { EncryptedToken } from "../destinations/crypto";
import { decryptWebhookSecret, type EndpointSecretColumns, encryptWebhookSecret } from "./secrets";

// SQL of webhook endpoints, their deliveries and attempts, run in the caller's tenant transaction (RLS
// scopes every statement to the org). Secret ciphertexts are read only by loadEndpointSecrets.

export type DisabledReason = "manual" | "gone" | "failing";

export interface WebhookEndpoint {
  id: string;
  orgId: string;
  projectId: string | null;
  url: string;
  description: string | null;
  eventTypes: string[];
  enabled: boolean;
  disabledReason: DisabledReason | null;
  disabledAt: Date | null;
  failingSince: Date | null;
  previousSecretExpiresAt: Date | null;
  createdAt: Date;
  updatedAt: Date;
}

const ENDPOINT_COLUMNS = [
  "id",
  "org_id",
  "project_id",
  "url",
  "description",
  "event_types",
  "enabled",
  "disabled_reason",
  "disabled_at",
  "failing_since",
  "previous_secret_expires_at",
  "created_at",
  "updated_at",
] as const;

type EndpointRow = {
  id: string;
  org_id: string;
  project_id: string | null;
  url: string;
  description: string | null;
  event_types: string[];
  enabled: boolean;
  disabled_reason: string | null;
  disabled_at: Date | null;
  failing_since: Date | null;
  previous_secret_expires_at: Date | null;
  created_at: Date;
  updated_at: Date;
};

function toEndpoint(row: EndpointRow): WebhookEndpoint {
  return {
    id: row.id,
    orgId: row.org_id,
    projectId: row.project_id,
    url: row.url,
    description: row.description,
    eventTypes: row.event_types,
    enabled: row.enabled,
    // The column's check constraint allows these three only.
    disabledReason: row.disabled_reason as DisabledReason | null,
    disabledAt: row.disabled_at,
    failingSince: row.failing_since,
    previousSecretExpiresAt: row.previous_secret_expires_at,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

export interface EndpointInput {
  id: string;
  url: string;
  description: string | null;
  eventTypes: string[];
  projectId: string | null;
  enabled: boolean;
  secret: EncryptedToken;
}

export async function insertEndpoint(
  db: Db,
  orgId: string,
  input: EndpointInput,
  now: Date,
): Promise<WebhookEndpoint> {
  const row = await db
    .insertInto("webhook_endpoints")
    .values({
      id: input.id,
      org_id: orgId,
      project_id: input.projectId,
      url: input.url,
      description: input.description,
      event_types: input.eventTypes,
      enabled: input.enabled,
      disabled_reason: input.enabled ? null : "manual",
      disabled_at: input.enabled ? null : now,
      secret_ciphertext: input.secret.ciphertext,
      secret_key_id: input.secret.keyId,
      created_at: now,
      updated_at: now,
    })
    .returning(ENDPOINT_COLUMNS)
    .executeTakeFirstOrThrow();
  return toEndpoint(row);
}

/**
 * Live endpoints of the org, counted under a lock on the org's row: two creates racing for the last slot
 * are serialized, so the limit holds exactly.
 */
export async function countLiveEndpointsLocked(db: Db, orgId: string): Promise<number> {
  await sql`select 1 from organizations where id = ${orgId} for update`.execute(db);
  const row = await db
    .selectFrom("webhook_endpoints")
    .select((eb) => eb.fn.countAll<string>().as("n"))
    .where("deleted_at", "is", null)
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

export async function getEndpoint(db: Db, id: string): Promise<WebhookEndpoint | null> {
  const row = await db
    .selectFrom("webhook_endpoints")
    .select(ENDPOINT_COLUMNS)
    .where("id", "=", id)
    .where("deleted_at", "is", null)
    .executeTakeFirst();
  return row ? toEndpoint(row) : null;
}

/** The endpoint with its secret ciphertexts (for signing a test send). */
export async function loadEndpointSecrets(
  db: Db,
  id: string,
): Promise<(EndpointSecretColumns & { url: string }) | null> {
  const row = await db
    .selectFrom("webhook_endpoints")
    .select([
      "id",
      "org_id",
      "url",
      "secret_ciphertext",
      "secret_key_id",
      "previous_secret_ciphertext",
      "previous_secret_key_id",
      "previous_secret_expires_at",
    ])
    .where("id", "=", id)
    .where("deleted_at", "is", null)
    .executeTakeFirst();
  return row ?? null;
}

export async function listEndpoints(
  db: Db,
  page: { limit: number; startingAfter?: string | undefined },
): Promise<{ data: WebhookEndpoint[]; hasMore: boolean }> {
  const { rows, hasMore } = await newestFirstPage(
    db.selectFrom("webhook_endpoints").select(ENDPOINT_COLUMNS).where("deleted_at", "is", null),
    { table: "webhook_endpoints", time: "created_at", id: "id", ...page },
  );
  return { data: rows.map(toEndpoint), hasMore };
}

export interface EndpointPatch {
  url?: string | undefined;
  description?: string | null | undefined;
  eventTypes?: string[] | undefined;
  projectId?: string | null | undefined;
  enabled?: boolean | undefined;
}

/**
 * Applies a change. Switching an endpoint off by hand records reason `manual`; switching it on clears the
 * reason, the time and the failure streak (whatever disabled it, the partner says it is fixed).
 */
export async function updateEndpoint(
  db: Db,
  id: string,
  patch: EndpointPatch,
  now: Date,
): Promise<{ before: WebhookEndpoint; after: WebhookEndpoint } | null> {
  const before = await getEndpoint(db, id);
  if (!before) return null;
  const toggled = patch.enabled !== undefined && patch.enabled !== before.enabled;
  const row = await db
    .updateTable("webhook_endpoints")
    .set({
      ...(patch.url === undefined ? {} : { url: patch.url }),
      ...(patch.description === undefined ? {} : { description: patch.description }),
      ...(patch.eventTypes === undefined ? {} : { event_types: patch.eventTypes }),
      ...(patch.projectId === undefined ? {} : { project_id: patch.projectId }),
      ...(toggled && patch.enabled
        ? { enabled: true, disabled_reason: null, disabled_at: null, failing_since: null }
        : {}),
      ...(toggled && !patch.enabled ? { enabled: false, disabled_reason: "manual", disabled_at: now } : {}),
      updated_at: now,
    })
    .where("id", "=", id)
    .where("deleted_at", "is", null)
    .returning(ENDPOINT_COLUMNS)
    .executeTakeFirstOrThrow();
  return { before, after: toEndpoint(row) };
}

/**
 * Deletes an endpoint: it stops receiving at once (deliveries still queued for it are dropped by the
 * webhooks Worker, which skips deleted endpoints). The row stays, switched off, so its delivery and attempt
 * history keep their endpoint until they age out.
 */
export async function deleteEndpoint(db: Db, id: string, now: Date): Promise<WebhookEndpoint | null> {
  const before = await getEndpoint(db, id);
  if (!before) return null;
  await db
    .updateTable("webhook_endpoints")
    .set({
      deleted_at: now,
      updated_at: now,
      enabled: false,
      disabled_reason: before.disabledReason ?? "manual",
      disabled_at: before.disabledAt ?? now,
    })
    .where("id", "=", id)
    .where("deleted_at", "is", null)
    .execute();
  return before;
}

/** A new current secret; the old current one becomes the previous until `previousExpiresAt`. */
export async function rotateEndpointSecret(
  db: Db,
  id: string,
  next: EncryptedToken,
  previousExpiresAt: Date,
  now: Date,
): Promise<WebhookEndpoint | null> {
  const row = await db
    .updateTable("webhook_endpoints")
    .set((eb) => ({
      previous_secret_ciphertext: eb.ref("secret_ciphertext"),
      previous_secret_key_id: eb.ref("secret_key_id"),
      previous_secret_expires_at: previousExpiresAt,
      secret_ciphertext: next.ciphertext,
      secret_key_id: next.keyId,
      updated_at: now,
    }))
    .where("id", "=", id)
    .where("deleted_at", "is", null)
    .returning(ENDPOINT_COLUMNS)
    .executeTakeFirst();
  return row ? toEndpoint(row) : null;
}

export interface WebhookDeliveryView {
  messageId: string;
  endpointId: string;
  eventType: string;
  payload: Record<string, unknown>;
  status: "pending" | "succeeded" | "failed";
  attempts: number;
  nextAttemptAt: Date | null;
  lastAttemptAt: Date | null;
  lastStatusCode: number | null;
  createdAt: Date;
}

const DELIVERY_COLUMNS = [
  "message_id",
  "endpoint_id",
  "status",
  "attempts",
  "next_attempt_at",
  "last_attempt_at",
  "last_status_code",
  "created_at",
] as const;

type DeliveryRow = {
  message_id: string;
  endpoint_id: string;
  status: "pending" | "succeeded" | "failed";
  attempts: number;
  next_attempt_at: Date;
  last_attempt_at: Date | null;
  last_status_code: number | null;
  created_at: Date;
};

/** Deliveries with their messages' type and payload (a second query: the page is keyed on deliveries). */
async function withMessages(db: Db, rows: DeliveryRow[]): Promise<WebhookDeliveryView[]> {
  if (rows.length === 0) return [];
  const messages = await db
    .selectFrom("webhook_messages")
    .select(["id", "event_type", "payload"])
    .where(
      "id",
      "in",
      rows.map((r) => r.message_id),
    )
    .execute();
  const byId = new Map(messages.map((m) => [m.id, m]));
  return rows.flatMap((r) => {
    const m = byId.get(r.message_id);
    if (!m) return [];
    return [
      {
        messageId: r.message_id,
        endpointId: r.endpoint_id,
        eventType: m.event_type,
        payload: m.payload,
        status: r.status,
        attempts: r.attempts,
        nextAttemptAt: r.status === "pending" ? r.next_attempt_at : null,
        lastAttemptAt: r.last_attempt_at,
        lastStatusCode: r.last_status_code,
        createdAt: r.created_at,
      },
    ];
  });
}

/** An endpoint's deliveries (one per message), newest first, with each message's type and payload. */
export async function listDeliveries(
  db: Db,
  endpointId: string,
  page: { limit: number; startingAfter?: string | undefined; status?: DeliveryRow["status"] | undefined },
): Promise<{ data: WebhookDeliveryView[]; hasMore: boolean }> {
  let query = db
    .selectFrom("webhook_deliveries")
    .select(DELIVERY_COLUMNS)
    .where("endpoint_id", "=", endpointId);
  if (page.status) query = query.where("status", "=", page.status);
  const { rows, hasMore } = await newestFirstPage(query, {
    table: "webhook_deliveries",
    time: "created_at",
    id: "message_id",
    limit: page.limit,
    startingAfter: page.startingAfter,
    cursorScope: { endpoint_id: endpointId },
  });
  return { data: await withMessages(db, rows), hasMore };
}

export interface WebhookAttemptView {
  id: string;
  endpointId: string;
  messageId: string | null;
  attemptedAt: Date;
  durationMs: number;
  statusCode: number | null;
  errorCode: string | null;
  responseExcerpt: string | null;
}

/** An endpoint's attempts since `since` (the 30-day log), newest first. */
export async function listAttempts(
  db: Db,
  endpointId: string,
  page: { limit: number; startingAfter?: string | undefined; since: Date },
): Promise<{ data: WebhookAttemptView[]; hasMore: boolean }> {
  const { rows, hasMore } = await newestFirstPage(
    db
      .selectFrom("webhook_attempts")
      .select([
        "id",
        "endpoint_id",
        "message_id",
        "attempted_at",
        "duration_ms",
        "status_code",
        "error_code",
        "response_excerpt",
      ])
      .where("endpoint_id", "=", endpointId)
      .where("attempted_at", ">=", page.since),
    {
      table: "webhook_attempts",
      time: "attempted_at",
      id: "id",
      limit: page.limit,
      startingAfter: page.startingAfter,
      cursorScope: { endpoint_id: endpointId },
    },
  );
  return {
    data: rows.map((r) => ({
      id: r.id,
      endpointId: r.endpoint_id,
      messageId: r.message_id,
      attemptedAt: r.attempted_at,
      durationMs: r.duration_ms,
      statusCode: r.status_code,
      errorCode: r.error_code,
      responseExcerpt: r.response_excerpt,
    })),
    hasMore,
  };
}

export async function insertAttempt(db: Db, orgId: string, attempt: WebhookAttemptView): Promise<void> {
  await db
    .insertInto("webhook_attempts")
    .values({
      id: attempt.id,
      org_id: orgId,
      endpoint_id: attempt.endpointId,
      message_id: attempt.messageId,
      attempted_at: attempt.attemptedAt,
      duration_ms: attempt.durationMs,
      status_code: attempt.statusCode,
      error_code: attempt.errorCode,
      response_excerpt: attempt.responseExcerpt,
    })
    .execute();
}

/**
 * Puts one delivery back in line: pending, due now, so the sweep's retry step puts it on the Queue at its
 * next run. The message's dispatched_at is left alone: marking the message undispatched would make the
 * outbox step enqueue every pending delivery of it, including other endpoints' deliveries waiting for a
 * later retry (an early, unscheduled attempt there). A message never dispatched is the outbox step's
 * anyway. Its attempt count stays: it is history.
 */
export async function requeueDelivery(
  db: Db,
  endpointId: string,
  messageId: string,
  now: Date,
): Promise<WebhookDeliveryView | null> {
  const updated = await db
    .updateTable("webhook_deliveries")
    .set({ status: "pending", next_attempt_at: now })
    .where("endpoint_id", "=", endpointId)
    .where("message_id", "=", messageId)
    .returning("message_id")
    .executeTakeFirst();
  if (!updated) return null;
  return getDelivery(db, endpointId, messageId);
}

export async function getDelivery(
  db: Db,
  endpointId: string,
  messageId: string,
): Promise<WebhookDeliveryView | null> {
  const row = await db
    .selectFrom("webhook_deliveries")
    .select(DELIVERY_COLUMNS)
    .where("endpoint_id", "=", endpointId)
    .where("message_id", "=", messageId)
    .executeTakeFirst();
  return row ? ((await withMessages(db, [row]))[0] ?? null) : null;
}

/**
 * Keyring rotation for signing secrets (scripts/reencrypt-destination-tokens.ts, as the maintenance role,
 * across orgs): every current or previous secret under a key other than the ring's current one is
 * decrypted and encrypted again under it. Returns how many endpoints were rewritten. Rows are locked, so a
 * rotation through the API meanwhile waits rather than being overwritten.
 */
export async function reencryptWebhookSecrets(
  db: Db,
  keyring: Keyring,
  options: { orgId?: string | undefined } = {},
): Promise<number> {
  let query = db
    .selectFrom("webhook_endpoints")
    .select([
      "id",
      "org_id",
      "secret_ciphertext",
      "secret_key_id",
      "previous_secret_ciphertext",
      "previous_secret_key_id",
    ])
    .where((eb) =>
      eb.or([
        eb("secret_key_id", "!=", keyring.currentKeyId),
        eb("previous_secret_key_id", "!=", keyring.currentKeyId),
      ]),
    );
  if (options.orgId) query = query.where("org_id", "=", options.orgId);
  const stale = await query.forUpdate().execute();
  for (const row of stale) {
    const binding = { orgId: row.org_id, endpointId: row.id };
    const move = async (ciphertext: string, keyId: string) =>
      keyId === keyring.currentKeyId
        ? { ciphertext, keyId }
        : encryptWebhookSecret(
            keyring,
            await decryptWebhookSecret(keyring, { ciphertext, keyId }, binding),
            binding,
          );
    const current = await move(row.secret_ciphertext, row.secret_key_id);
    const previous =
      row.previous_secret_ciphertext === null || row.previous_secret_key_id === null
        ? null
        : await move(row.previous_secret_ciphertext, row.previous_secret_key_id);
    await db
      .updateTable("webhook_endpoints")
      .set({
        secret_ciphertext: current.ciphertext,
        secret_key_id: current.keyId,
        ...(previous
          ? { previous_secret_ciphertext: previous.ciphertext, previous_secret_key_id: previous.keyId }
          : {}),
      })
      .where("id", "=", row.id)
      .execute();
  }
  return stale.length;
}

/** Signing secrets still under a key other than `currentKeyId`: must be 0 before an old key leaves the ring. */
export async function countStaleWebhookSecrets(
  db: Db,
  currentKeyId: string,
  options: { orgId?: string | undefined } = {},
): Promise<number> {
  let query = db
    .selectFrom("webhook_endpoints")
    .select((eb) => eb.fn.countAll<string>().as("count"))
    .where((eb) =>
      eb.or([eb("secret_key_id", "!=", currentKeyId), eb("previous_secret_key_id", "!=", currentKeyId)]),
    );
  if (options.orgId) query = query.where("org_id", "=", options.orgId);
  const { count } = await query.executeTakeFirstOrThrow();
  return Number(count);
}
