import { withFilters } from "../../shared/db/filters";
import { newestFirstPage } from "../../shared/db/newestFirstPage";
import type { VerbContext } from "../context";
import type { Actor } from "./writeAudit";

/** One audit row as the API shows it: who did what to which resource, when, in which request. */
export interface AuditEvent {
  id: string;
  occurredAt: Date;
  actor: Actor;
  action: string;
  resource: { type: string; id: string };
  requestId: string | null;
  /** The before/after diff, secrets already removed when the row was written (writeAudit.ts). */
  changes: Record<string, unknown>;
}

export interface AuditLogFilter {
  action?: string | undefined;
  resourceType?: string | undefined;
  resourceId?: string | undefined;
  actorId?: string | undefined;
  /** occurred_at ≥ from. */
  from?: Date | undefined;
  /** occurred_at < to. */
  to?: Date | undefined;
}

const COLUMNS = [
  "id",
  "occurred_at",
  "actor_type",
  "actor_id",
  "action",
  "resource_type",
  "resource_id",
  "request_id",
  "changes",
] as const;

type Row = {
  id: string;
  occurred_at: Date;
  actor_type: Actor["type"];
  actor_id: string;
  action: string;
  resource_type: string;
  resource_id: string;
  request_id: string | null;
  changes: Record<string, unknown>;
};

function toAuditEvent(row: Row): AuditEvent {
  return {
    id: row.id,
    occurredAt: row.occurred_at,
    actor: { type: row.actor_type, id: row.actor_id },
    action: row.action,
    resource: { type: row.resource_type, id: row.resource_id },
    requestId: row.request_id,
    changes: row.changes,
  };
}

/**
 * The org's audit rows (RLS scopes them to the transaction's org), newest first, keyset-paginated on
 * (occurred_at, id) so rows written while a client pages never shift or repeat a page. A cursor that is
 * not one of the org's rows matches nothing: an empty page, never another org's position.
 */
export async function listAuditEvents(
  ctx: VerbContext,
  filter: AuditLogFilter,
  page: { limit: number; startingAfter?: string | undefined },
): Promise<{ data: AuditEvent[]; hasMore: boolean }> {
  const query = withFilters(ctx.db.selectFrom("audit_log").select(COLUMNS), {
    equal: {
      action: filter.action,
      resource_type: filter.resourceType,
      resource_id: filter.resourceId,
      actor_id: filter.actorId,
    },
    time: { column: "occurred_at", from: filter.from, to: filter.to },
  });
  const { rows, hasMore } = await newestFirstPage(query, {
    table: "audit_log",
    time: "occurred_at",
    id: "id",
    ...page,
  });
  return { data: rows.map(toAuditEvent), hasMore };
}
