import type { Tx } from "../../shared/db";
import { newId } from "../../shared/ids";

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

// Never copied into an audit row, whatever a caller passes.
const SECRET_FIELDS = new Set(["secret", "key_sha256", "keySha256", "token", "accessToken", "password"]);

function stripSecrets(value: unknown): unknown {
  if (value === null || typeof value !== "object") return value;
  if (value instanceof Date) return value.toISOString();
  if (Array.isArray(value)) return value.map(stripSecrets);
  return Object.fromEntries(
    Object.entries(value)
      .filter(([key]) => !SECRET_FIELDS.has(key))
      .map(([key, v]) => [key, stripSecrets(v)]),
  );
}

/**
 * The before/after diff: only the fields that changed, secrets removed. Creates have no `before`,
 * deletes no `after`.
 */
export function auditChanges(before: unknown, after: unknown): Record<string, unknown> {
  const b = stripSecrets(before) as Record<string, unknown> | null | undefined;
  const a = stripSecrets(after) as Record<string, unknown> | null | undefined;
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
export async function writeAudit(tx: Tx, orgId: string, entry: AuditEntry, now: Date): Promise<void> {
  await tx
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
