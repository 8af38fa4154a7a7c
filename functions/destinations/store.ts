import type { Selectable } from "kysely";
import { z } from "zod";
import type { Db } from "../../shared/db";
import type { Destinations } from "../../shared/db/types";
import type { Destination, DestinationKind, DestinationStatus, Keyring } from "../../shared/destinations";
import { emitWebhookEvent } from "../webhooks/outbox";
import { decryptToken, encryptToken, reencryptToken, type TokenBinding } from "./crypto";

// Destinations per project, read and written by the partner API and read by the relay. The access token
// leaves this file in two forms only: decrypted inside a Destination (relay and test-send, in memory), or
// as its last four characters in a DestinationView (everything a response or an audit row may show).

/** Non-secret settings, stored in `config`. */
const metaConfig = z.object({
  datasetId: z.string(),
  testEventCode: z.string().nullable(),
  sendDeviceIds: z.boolean(),
});
const tiktokConfig = z.object({ pixelCode: z.string(), testEventCode: z.string().nullable() });
const appleConfig = z.object({});

/** What a partner sends (validated by the route): token omitted on a replace keeps the stored one. */
export type DestinationInput =
  | {
      kind: "meta";
      enabled: boolean;
      datasetId: string;
      accessToken?: string | undefined;
      testEventCode: string | null;
      sendDeviceIds: boolean;
    }
  | {
      kind: "tiktok";
      enabled: boolean;
      pixelCode: string;
      accessToken?: string | undefined;
      testEventCode: string | null;
    }
  | { kind: "apple-search-ads"; enabled: boolean };

/** A destination as the API shows it: never the token, only its last four characters. */
export type DestinationView = {
  projectId: string;
  kind: DestinationKind;
  enabled: boolean;
  status: DestinationStatus;
  tokenLast4: string | null;
  createdAt: Date;
  updatedAt: Date;
  failingSince: Date | null;
} & (
  | { kind: "meta"; datasetId: string; testEventCode: string | null; sendDeviceIds: boolean }
  | { kind: "tiktok"; pixelCode: string; testEventCode: string | null }
  | { kind: "apple-search-ads" }
);

export type PutOutcome =
  | { ok: true; before: DestinationView | null; after: DestinationView }
  | { ok: false; refused: "token_required" };

const COLUMNS = [
  "org_id",
  "project_id",
  "kind",
  "enabled",
  "status",
  "config",
  "token_ciphertext",
  "token_key_id",
  "token_last4",
  "created_at",
  "updated_at",
  "failing_since",
] as const;

type Row = Selectable<Destinations>;

function binding(row: Pick<Row, "org_id" | "project_id" | "kind">): TokenBinding {
  return { orgId: row.org_id, projectId: row.project_id, kind: row.kind };
}

function toView(row: Row): DestinationView {
  const base = {
    projectId: row.project_id,
    enabled: row.enabled,
    status: row.status,
    tokenLast4: row.token_last4,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    failingSince: row.failing_since,
  };
  switch (row.kind) {
    case "meta":
      return { ...base, kind: "meta", ...metaConfig.parse(row.config) };
    case "tiktok":
      return { ...base, kind: "tiktok", ...tiktokConfig.parse(row.config) };
    case "apple-search-ads":
      appleConfig.parse(row.config);
      return { ...base, kind: "apple-search-ads" };
  }
}

/** The columns a destination is built from, for a sender: its settings and its decrypted token. */
export type DestinationRow = Pick<
  Row,
  "org_id" | "project_id" | "kind" | "enabled" | "status" | "config" | "token_ciphertext" | "token_key_id"
>;

/** A destination as a sender uses it: settings checked, token decrypted (TokenDecryptError if it cannot be). */
export async function toDestination(row: DestinationRow, keyring: Keyring): Promise<Destination> {
  const base = { orgId: row.org_id, projectId: row.project_id, enabled: row.enabled, status: row.status };
  if (row.kind === "apple-search-ads") return { ...base, kind: "apple-search-ads" };
  if (row.token_ciphertext === null || row.token_key_id === null) {
    // The schema's check and putDestination make this impossible; refuse rather than send with no token.
    throw new Error(`Destination ${row.project_id}/${row.kind} has no token.`);
  }
  const accessToken = await decryptToken(
    keyring,
    { ciphertext: row.token_ciphertext, keyId: row.token_key_id },
    binding(row),
  );
  if (row.kind === "meta") return { ...base, kind: "meta", accessToken, ...metaConfig.parse(row.config) };
  return { ...base, kind: "tiktok", accessToken, ...tiktokConfig.parse(row.config) };
}

/** The last four characters shown for a token; the whole token when it is that short (bounds: route). */
function last4(token: string): string {
  return token.slice(-4);
}

function rows(db: Db, projectId: string) {
  return db.selectFrom("destinations").select(COLUMNS).where("project_id", "=", projectId);
}

/**
 * Every destination of a project (enabled or not: the caller checks `enabled`), tokens decrypted. Runs in
 * the caller's tenant transaction. Throws TokenDecryptError when a token cannot be read (its key was
 * removed from the ring before re-encryption): loud on purpose, so no event is silently dropped.
 */
export async function loadDestinations(db: Db, projectId: string, keyring: Keyring): Promise<Destination[]> {
  const found = await rows(db, projectId).orderBy("kind").execute();
  return Promise.all(found.map((row) => toDestination(row, keyring)));
}

/** One destination, token decrypted (test-send), or null. */
export async function loadDestination(
  db: Db,
  projectId: string,
  kind: DestinationKind,
  keyring: Keyring,
): Promise<Destination | null> {
  const row = await rows(db, projectId).where("kind", "=", kind).executeTakeFirst();
  return row ? toDestination(row, keyring) : null;
}

/**
 * The relay's verdict on a destination. `failing_since` keeps the first failure's time while it stays
 * failing; a success clears it. Not a configuration change: `updated_at` is left alone.
 */
export async function setDestinationStatus(
  db: Db,
  projectId: string,
  kind: DestinationKind,
  status: DestinationStatus,
  at: Date,
): Promise<void> {
  // Only a real change is written (failing stays failing from its first failure; active stays active), so
  // exactly the transitions notify: active → failing is `destination.failing`, failing → active is
  // `destination.recovered`, each in the transaction that records it.
  const changed = await db
    .updateTable("destinations")
    .set({ status, failing_since: status === "failing" ? at : null })
    .where("project_id", "=", projectId)
    .where("kind", "=", kind)
    .where("status", "<>", status)
    .returning(["org_id", "failing_since"])
    .executeTakeFirst();
  if (!changed) return;
  const link = `/v1/projects/${projectId}/destinations/${kind}`;
  const orgId = changed.org_id;
  if (status === "failing") {
    await emitWebhookEvent(db, {
      orgId,
      projectId,
      type: "destination.failing",
      payload: { projectId, destination: kind, status, failingSince: at.toISOString(), link },
      now: at,
    });
  } else {
    await emitWebhookEvent(db, {
      orgId,
      projectId,
      type: "destination.recovered",
      payload: { projectId, destination: kind, status, recoveredAt: at.toISOString(), link },
      now: at,
    });
  }
}

export async function getDestination(
  db: Db,
  projectId: string,
  kind: DestinationKind,
): Promise<DestinationView | null> {
  const row = await rows(db, projectId).where("kind", "=", kind).executeTakeFirst();
  return row ? toView(row) : null;
}

export async function listDestinations(db: Db, projectId: string): Promise<DestinationView[]> {
  return (await rows(db, projectId).orderBy("kind").execute()).map(toView);
}

function configOf(input: DestinationInput): Record<string, unknown> {
  switch (input.kind) {
    case "meta":
      return {
        datasetId: input.datasetId,
        testEventCode: input.testEventCode,
        sendDeviceIds: input.sendDeviceIds,
      };
    case "tiktok":
      return { pixelCode: input.pixelCode, testEventCode: input.testEventCode };
    case "apple-search-ads":
      return {};
  }
}

/**
 * Creates or replaces a project's destination of one kind. A new token is encrypted under the current key;
 * a replace without a token keeps the stored one, re-encrypted under the current key if an older key wrote
 * it (rotation on write). Status is kept: only the relay's results change it. Locks the row (for update)
 * so concurrent replaces apply one after the other.
 */
export async function putDestination(
  db: Db,
  orgId: string,
  projectId: string,
  input: DestinationInput,
  keyring: Keyring,
  now: Date,
): Promise<PutOutcome> {
  const existing = await rows(db, projectId).where("kind", "=", input.kind).forUpdate().executeTakeFirst();
  const where = { orgId, projectId, kind: input.kind };
  let token: { ciphertext: string | null; keyId: string | null; last4: string | null };
  if (input.kind === "apple-search-ads") {
    token = { ciphertext: null, keyId: null, last4: null };
  } else if (input.accessToken !== undefined) {
    const sealed = await encryptToken(keyring, input.accessToken, where);
    token = { ciphertext: sealed.ciphertext, keyId: sealed.keyId, last4: last4(input.accessToken) };
  } else if (existing?.token_ciphertext && existing.token_key_id) {
    const stored = { ciphertext: existing.token_ciphertext, keyId: existing.token_key_id };
    const moved = (await reencryptToken(keyring, stored, binding(existing))) ?? stored;
    token = { ciphertext: moved.ciphertext, keyId: moved.keyId, last4: existing.token_last4 };
  } else {
    return { ok: false, refused: "token_required" };
  }
  const values = {
    enabled: input.enabled,
    config: JSON.stringify(configOf(input)),
    token_ciphertext: token.ciphertext,
    token_key_id: token.keyId,
    token_last4: token.last4,
    updated_at: now,
  };
  const written = await db
    .insertInto("destinations")
    .values({
      org_id: orgId,
      project_id: projectId,
      kind: input.kind,
      status: "active",
      created_at: now,
      ...values,
    })
    .onConflict((oc) => oc.columns(["project_id", "kind"]).doUpdateSet(values))
    .returning(COLUMNS)
    .executeTakeFirstOrThrow();
  return { ok: true, before: existing ? toView(existing) : null, after: toView(written) };
}

/** Removes a destination; returns what it was, or null when there was none. */
export async function deleteDestination(
  db: Db,
  projectId: string,
  kind: DestinationKind,
): Promise<DestinationView | null> {
  const row = await db
    .deleteFrom("destinations")
    .where("project_id", "=", projectId)
    .where("kind", "=", kind)
    .returning(COLUMNS)
    .executeTakeFirst();
  return row ? toView(row) : null;
}

/**
 * Key rotation: moves every token visible to the transaction (one org under withTenant; all orgs as
 * layers_maintenance, or only `orgId`) that an older key wrote to the current key. Returns how many moved. Rows already under the current key are not touched, so it can run again
 * (or concurrently with writes, which lock the same rows) safely.
 */
export async function reencryptDestinations(
  db: Db,
  keyring: Keyring,
  options: { orgId?: string | undefined } = {},
): Promise<number> {
  let query = db
    .selectFrom("destinations")
    .select(COLUMNS)
    .where("token_key_id", "is not", null)
    .where("token_key_id", "!=", keyring.currentKeyId);
  if (options.orgId) query = query.where("org_id", "=", options.orgId);
  const stale = await query.forUpdate().execute();
  for (const row of stale) {
    if (row.token_ciphertext === null || row.token_key_id === null) continue;
    const moved = await reencryptToken(
      keyring,
      { ciphertext: row.token_ciphertext, keyId: row.token_key_id },
      binding(row),
    );
    if (!moved) continue;
    await db
      .updateTable("destinations")
      .set({ token_ciphertext: moved.ciphertext, token_key_id: moved.keyId })
      .where("project_id", "=", row.project_id)
      .where("kind", "=", row.kind)
      .execute();
  }
  return stale.length;
}

/** Tokens still under a key other than `currentKeyId`: must be 0 before an old key leaves the ring. */
export async function countStaleDestinationTokens(
  db: Db,
  currentKeyId: string,
  options: { orgId?: string | undefined } = {},
): Promise<number> {
  let query = db
    .selectFrom("destinations")
    .select((eb) => eb.fn.countAll<string>().as("count"))
    .where("token_key_id", "is not", null)
    .where("token_key_id", "!=", currentKeyId);
  if (options.orgId) query = query.where("org_id", "=", options.orgId);
  const { count } = await query.executeTakeFirstOrThrow();
  return Number(count);
}
