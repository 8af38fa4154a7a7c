import { sql } from "kysely";
import { type Db, withTenant } from "../../shared/db";
import { ApiError } from "../../shared/errors";
import { sha256Hex } from "../../shared/hash";
import { hasSecretShape, newId, newSecret } from "../../shared/ids";
import { audit } from "../audit/writeAudit";
import { found, transactionOf, type VerbContext } from "../context";
import { visibleProject } from "../projects/verbs";

/** The prefix of an org-deletion receipt token (shown once; stored as SHA-256). */
export const RECEIPT_TOKEN_PREFIX = "odr_";

interface DeletionRow {
  id: string;
  status: string;
  counts: Record<string, number | string>;
  requested_at: Date;
  started_at: Date | null;
  finished_at: Date | null;
}

const counted = (counts: Record<string, number | string>) =>
  Object.fromEntries(
    Object.entries(counts)
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([k, v]) => [k, Number(v)]),
  );

export function projectDeletionJson(row: DeletionRow & { project_id: string }) {
  return {
    id: row.id,
    object: "project_deletion" as const,
    projectId: row.project_id,
    status: row.status as "pending" | "running" | "completed",
    counts: counted(row.counts),
    requestedAt: row.requested_at.toISOString(),
    startedAt: row.started_at?.toISOString() ?? null,
    finishedAt: row.finished_at?.toISOString() ?? null,
  };
}

const PROJECT_DELETION_COLUMNS = sql`id, project_id, status, counts, requested_at, started_at, finished_at`;

/**
 * Requests the deletion of an archived project (owner or admin, org-wide key). In the caller's transaction:
 * the project is marked (ingest refuses its SDK keys, the consumer drops its queued events), its SDK keys
 * and the API keys restricted to it are revoked, the deletion row and its audit row are written. The Cron
 * Worker erases the rest (functions/lifecycle/cascade.ts). A second request returns the same deletion.
 */
export async function requestProjectDeletion(ctx: VerbContext, projectId: string) {
  await visibleProject(ctx, projectId);
  const tx = transactionOf(ctx);
  // Locked: a concurrent unarchive or second deletion waits for this one.
  const { rows: projects } = await sql<{ archived_at: Date | null }>`
    select archived_at from projects where id = ${projectId} for update
  `.execute(tx);
  const project = found(projects[0], `No project ${projectId}.`);
  const { rows: existing } = await sql<DeletionRow & { project_id: string }>`
    select ${PROJECT_DELETION_COLUMNS} from project_deletions where project_id = ${projectId}
  `.execute(tx);
  if (existing[0]) return { deletion: projectDeletionJson(existing[0]), created: false };
  if (project.archived_at === null) {
    throw new ApiError(
      "project_not_archived",
      `Archive project ${projectId} first (POST /v1/projects/${projectId}/archive), then delete it.`,
    );
  }
  const { rows } = await sql<DeletionRow & { project_id: string }>`
    insert into project_deletions (id, org_id, project_id, requested_at, requested_by, request_id)
    values (${newId("pdel")}, ${ctx.orgId}, ${projectId}, ${ctx.now}, ${`${ctx.actor.type}:${ctx.actor.id}`},
      ${ctx.requestId})
    returning ${PROJECT_DELETION_COLUMNS}
  `.execute(tx);
  const row = rows[0] as DeletionRow & { project_id: string };
  await sql`update projects set deleted_at = ${ctx.now} where id = ${projectId}`.execute(tx);
  await sql`
    update sdk_keys set revoked_at = ${ctx.now} where project_id = ${projectId} and revoked_at is null
  `.execute(tx);
  await sql`
    update api_keys set revoked_at = ${ctx.now} where project_id = ${projectId} and revoked_at is null
  `.execute(tx);
  const deletion = projectDeletionJson(row);
  await audit(
    ctx,
    "project.deletion_requested",
    { type: "project", id: projectId },
    { after: { deletionId: deletion.id, status: deletion.status } },
  );
  return { deletion, created: true };
}

/** A project deletion of the caller's org (a project-restricted key sees its own project's only). */
export async function visibleProjectDeletion(ctx: VerbContext, deletionId: string) {
  const { rows } = await sql<DeletionRow & { project_id: string }>`
    select ${PROJECT_DELETION_COLUMNS} from project_deletions where id = ${deletionId} and org_id = ${ctx.orgId}
  `.execute(ctx.db);
  const row = rows[0];
  if (!row || (ctx.projectId && ctx.projectId !== row.project_id)) {
    throw new ApiError("not_found", `No project deletion ${deletionId}.`);
  }
  return projectDeletionJson(row);
}

export function orgDeletionJson(
  row: DeletionRow & { purge_after: Date | null },
  receiptToken: string | null,
) {
  return {
    id: row.id,
    object: "org_deletion" as const,
    status: row.status as "pending" | "running" | "completed",
    counts: counted(row.counts),
    requestedAt: row.requested_at.toISOString(),
    startedAt: row.started_at?.toISOString() ?? null,
    finishedAt: row.finished_at?.toISOString() ?? null,
    /** When the receipt itself is purged (two years after completion); null until then. */
    expiresAt: row.purge_after?.toISOString() ?? null,
    receiptUrl: `/v1/org-deletion-receipts/${row.id}`,
    receiptToken,
  };
}

const ORG_DELETION_COLUMNS = sql`id, status, counts, requested_at, started_at, finished_at, purge_after`;

/**
 * Requests the deletion of the caller's org (owner, org-wide key; `confirm` must be the org's name). In the
 * caller's transaction: every API key and SDK key of the org is revoked (refused by every Worker at once
 * on a change, within the key caches' TTL on a read: README), the org and its projects are marked (queued
 * events are dropped), and the receipt is created with a one-time token (returned here once, stored as
 * SHA-256). A second request finds the same receipt and answers it without a token.
 */
export async function requestOrgDeletion(ctx: VerbContext, confirm: string) {
  const tx = transactionOf(ctx);
  const { rows: orgs } = await sql<{ name: string }>`
    select name from organizations where id = ${ctx.orgId} for update
  `.execute(tx);
  const org = found(orgs[0], "No such org.");
  if (confirm !== org.name) {
    throw new ApiError("confirmation_mismatch", "`confirm` must be the org's exact name.");
  }
  const { rows: existing } = await sql<DeletionRow & { purge_after: Date | null }>`
    select ${ORG_DELETION_COLUMNS} from org_deletions where org_id = ${ctx.orgId}
  `.execute(tx);
  if (existing[0]) return { deletion: orgDeletionJson(existing[0], null), created: false };
  const token = newSecret(RECEIPT_TOKEN_PREFIX);
  const { rows } = await sql<DeletionRow & { purge_after: Date | null }>`
    insert into org_deletions (id, org_id, token_sha256, requested_at)
    values (${newId("odel")}, ${ctx.orgId}, ${await sha256Hex(token)}, ${ctx.now})
    returning ${ORG_DELETION_COLUMNS}
  `.execute(tx);
  const row = rows[0] as DeletionRow & { purge_after: Date | null };
  await sql`update organizations set deleted_at = ${ctx.now} where id = ${ctx.orgId}`.execute(tx);
  await sql`
    update projects set deleted_at = ${ctx.now} where org_id = ${ctx.orgId} and deleted_at is null
  `.execute(tx);
  await sql`
    update sdk_keys set revoked_at = ${ctx.now} where org_id = ${ctx.orgId} and revoked_at is null
  `.execute(tx);
  await sql`
    update api_keys set revoked_at = ${ctx.now} where org_id = ${ctx.orgId} and revoked_at is null
  `.execute(tx);
  // Erased with the org by the cascade; kept meanwhile so the org's log says who asked.
  await audit(
    ctx,
    "org.deletion_requested",
    { type: "org", id: ctx.orgId },
    { after: { deletionId: row.id } },
  );
  return { deletion: orgDeletionJson(row, token), created: true };
}

/**
 * An org-deletion receipt by id and token, without an API key (the org may be gone). The token is the only
 * key: the row is visible in a transaction that names the token's hash (RLS policy receipt_by_token). A
 * missing, malformed or wrong token and an unknown id answer the same 404.
 */
export async function readOrgDeletionReceipt(db: Db, id: string, token: string | undefined) {
  const notFound = new ApiError("not_found", `No org deletion receipt ${id}.`);
  if (!token || !hasSecretShape(token, RECEIPT_TOKEN_PREFIX)) throw notFound;
  const digest = await sha256Hex(token);
  // No org: the tenant policy matches nothing, the token policy the one receipt.
  const row = await withTenant(db, "", async (tx) => {
    await sql`select set_config('app.receipt_token_sha256', ${digest}, true)`.execute(tx);
    const { rows } = await sql<DeletionRow & { purge_after: Date | null }>`
      select ${ORG_DELETION_COLUMNS} from org_deletions where id = ${id} and token_sha256 = ${digest}
    `.execute(tx);
    return rows[0];
  });
  if (!row) throw notFound;
  return orgDeletionJson(row, null);
}
