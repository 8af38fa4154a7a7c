import type { Kysely, Transaction } from "kysely";
import type { Database } from "../shared/db";
import { ApiError } from "../shared/errors";
import type { Logger } from "../shared/logger";
import type { Role } from "../shared/roles";
import type { Actor } from "./audit/writeAudit";

/**
 * What every verb (an operation of the partner API's business logic: create a project, revoke a key, …)
 * is given: one object, the same whoever calls it (an API route today, a Cron job or a console tomorrow).
 * The verb owns its rules: what the caller may see (a restricted key's other projects are 404), limits,
 * and the audit row of its change.
 */
export interface VerbContext {
  /**
   * Where the verb reads and writes. A change runs inside the caller's one tenant transaction (the change,
   * its audit row and the idempotency envelope commit together; RLS scopes it to `orgId`); a read may be
   * given a handle that is not a transaction, so no verb opens or assumes one unless it says so.
   */
  db: Kysely<Database>;
  orgId: string;
  /** Who acts: recorded in the audit row. */
  actor: Actor;
  /** The acting key's role: a key never grants or takes away more than it has. */
  role: Role;
  /** The acting key's project restriction, or null for an org-wide key. */
  projectId: string | null;
  /** The request's clock. */
  now: Date;
  requestId: string;
  /** Carries the request's fields (requestId, orgId, route) on every line. */
  log: Logger;
}

/** Get-or-404: a missing row and a row the caller may not see answer the same. */
export function found<T>(value: T | null | undefined, message: string): T {
  if (value === null || value === undefined) throw new ApiError("not_found", message);
  return value;
}

/**
 * The context's handle as the transaction a change runs in (mutation() gives one): for a verb whose steps
 * must commit or roll back together. Called outside one, it fails loudly instead of half-applying.
 */
export function transactionOf(ctx: VerbContext): Transaction<Database> {
  if (!ctx.db.isTransaction) throw new Error("This change must run inside a transaction.");
  return ctx.db as Transaction<Database>;
}
