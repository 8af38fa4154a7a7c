import { type Kysely, sql } from "kysely";
import type { Database } from "../../shared/db";
import { newId } from "../../shared/ids";
import { WEBHOOK_EVENTS, type WebhookEventType, type WebhookPayload } from "./events";

// The outbox: an event is written by the transaction of the change that causes it, so it exists exactly
// when the change does — a rolled-back change notifies nobody, a committed one is never lost. Delivery
// happens later and elsewhere (the webhooks Worker's sweep puts undispatched messages on the Queue).
//
// Roles that emit: layers_api (API keys, projects), layers_relay (destination status), layers_maintenance
// (deletion requests, across orgs), layers_webhooks (an endpoint it disabled). They read only which
// endpoints want an event (never a secret): the grants on webhook_endpoints are column-limited to that.

export interface WebhookEmit<T extends WebhookEventType> {
  orgId: string;
  /** The project the event is about; null/absent for org-level events (API keys, endpoints). */
  projectId?: string | null | undefined;
  type: T;
  payload: WebhookPayload<T>;
  now: Date;
}

/**
 * Records one event for every enabled, live endpoint of the org that wants it: its event types are empty
 * (= all) or include the type, and it has no project filter or the event's project is that project (an
 * org-level event never reaches a project-filtered endpoint). One statement: the message and its pending
 * deliveries; nothing at all when no endpoint wants it. Must run inside the change's transaction.
 * Returns the message id, or null when no endpoint matched.
 */
export async function emitWebhookEvent<T extends WebhookEventType>(
  trx: Kysely<Database>,
  event: WebhookEmit<T>,
): Promise<string | null> {
  // Outside the change's transaction the outbox promise (exactly when the change commits) would not hold.
  if (!trx.isTransaction) throw new Error("emitWebhookEvent must run inside the change's transaction.");
  // A payload that does not match its catalogue schema is our bug: fail the change rather than send it.
  const payload = WEBHOOK_EVENTS[event.type].schema.parse(event.payload);
  const projectId = event.projectId ?? null;
  const messageId = newId("msg");
  // The org filter is explicit: RLS scopes tenant roles, but layers_maintenance bypasses it. No RETURNING:
  // the emitting roles may insert these rows but not read them back (the id is ours already).
  const result = await sql`
    with wanting as (
      select e.id from webhook_endpoints e
      where e.org_id = ${event.orgId} and e.enabled and e.deleted_at is null
        and (cardinality(e.event_types) = 0 or ${event.type}::text = any(e.event_types))
        and (e.project_id is null or e.project_id = ${projectId}::text)
    ), message as (
      insert into webhook_messages (id, org_id, project_id, event_type, payload, created_at)
      select ${messageId}, ${event.orgId}, ${projectId}, ${event.type}, ${JSON.stringify(payload)}::jsonb,
        ${event.now}::timestamptz
      where exists (select 1 from wanting)
    )
    insert into webhook_deliveries (message_id, endpoint_id, org_id, next_attempt_at, created_at)
    select ${messageId}, wanting.id, ${event.orgId}, ${event.now}::timestamptz, ${event.now}::timestamptz
    from wanting
  `.execute(trx);
  return Number(result.numAffectedRows ?? 0) > 0 ? messageId : null;
}
