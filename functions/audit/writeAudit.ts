import type { Db } from "../../shared/db";
import { newId } from "../../shared/ids";
import { withoutSecrets } from "../../shared/secretFields";
import type { VerbContext } from "../context";

export interface Actor {
  type: "api_key" | "member" | "system";
  id: string;
}

export interface AuditEntry {
  actor: Actor;
  action: string;
  resourceType: string;
  resourceId: string;
  requestId: string | null;
  before?: unknown;
  after?: unknown;
}

/**
 * The before/after diff: only the fields that changed, secrets removed. Creates have no `before`,
 * deletes no `after`.
 */
export function auditChanges(before: unknown, after: unknown): Record<string, unknown> {
  // Secrets are never copied into an audit row, whatever a caller passes.
  const b = withoutSecrets(before, "drop") as Record<string, unknown> | null | undefined;
  const a = withoutSecrets(after, "drop") as Record<string, unknown> | null | undefined;
  if (!b || !a) return { ...(b ? { before: b } : {}), ...(a ? { after: a } : {}) };
  const keys = [...new Set([...Object.keys(b), ...Object.keys(a)])].filter(
    (k) => JSON.stringify(b[k]) !== JSON.stringify(a[k]),
  );
  return {
    before: Object.fromEntries(keys.map((k) => [k, b[k] ?? null])),
    after: Object.fromEntries(keys.map((k) => [k, a[k] ?? null])),
  };
}

/** Writes one audit row inside the caller's transaction, so the row exists exactly when the change does. */
export async function writeAudit(db: Db, orgId: string, entry: AuditEntry, now: Date): Promise<void> {
  await db
    .insertInto("audit_log")
    .values({
      id: newId("aud"),
      org_id: orgId,
      occurred_at: now,
      actor_type: entry.actor.type,
      actor_id: entry.actor.id,
      action: entry.action,
      resource_type: entry.resourceType,
      resource_id: entry.resourceId,
      request_id: entry.requestId,
      changes: JSON.stringify(auditChanges(entry.before, entry.after)),
    })
    .execute();
}

/**
 * The audit row of a verb's change, in the verb's own transaction, as the acting key. `before`/`after` are
 * the resource's public shape (what the API answers); only the changed fields are kept.
 */
export function audit(
  ctx: VerbContext,
  action: string,
  resource: { type: string; id: string },
  change: { before?: unknown; after?: unknown },
): Promise<void> {
  return writeAudit(
    ctx.db,
    ctx.orgId,
    {
      actor: ctx.actor,
      action,
      resourceType: resource.type,
      resourceId: resource.id,
      requestId: ctx.requestId,
      ...change,
    },
    ctx.now,
  );
}
