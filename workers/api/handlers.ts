import type { Context } from "hono";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import { type Actor, writeAudit } from "../../functions/api/audit";
import {
  claimIdempotencyKey,
  completeIdempotencyKey,
  type IdempotencyScope,
  MAX_IDEMPOTENCY_KEY_LENGTH,
  releaseIdempotencyKey,
} from "../../functions/api/idempotency";
import { type Tx, withTenant } from "../../shared/db";
import { ApiError, errorBody } from "../../shared/errors";
import { sha256Hex } from "../../shared/hash";
import type { ApiEnv } from "./context";

// Every route handler goes through one of these two, so tenancy, roles and idempotency are applied the
// same way everywhere. They run after request validation: a 400 for a bad body is never stored.

export interface RequestScope {
  tx: Tx;
  orgId: string;
  actor: Actor;
  /** The key's project restriction, or null for an org-wide key. */
  projectId: string | null;
  requestId: string;
  now: Date;
}

function scope(c: Context<ApiEnv>, tx: Tx): RequestScope {
  const auth = c.get("auth");
  return {
    tx,
    orgId: auth.orgId,
    actor: { type: "api_key", id: auth.keyId },
    projectId: auth.projectId,
    requestId: c.get("requestId"),
    now: c.get("now"),
  };
}

// Authorization (role, org-wide keys, a restricted key's project) is declared on each route and checked by
// route middleware before these run (access.ts): before validation, and before a replay.

/**
 * A read: each of the handler's queries is one HTTP round trip, its own read-only transaction scoped to the
 * caller's org and role (shared/db/httpReads.ts), so a read opens no connection. The queries of one read
 * see separate snapshots, which no read here depends on. A read that streams (the NDJSON export) takes
 * the pooled connection `c.get("db")` itself: HTTP answers arrive whole.
 */
export async function query<T extends Response>(
  c: Context<ApiEnv>,
  fn: (s: RequestScope) => Promise<T>,
): Promise<T> {
  const reads = c.get("reads").as(c.get("auth").orgId);
  // The read functions are typed for a transaction; this handle runs each query in one of its own, and
  // refuses to open another (as a transaction handle does).
  return fn(scope(c, reads as unknown as Tx));
}

/** What identifies "the same request" for an Idempotency-Key: method, path with query string, body. */
async function requestFingerprint(c: Context<ApiEnv>): Promise<string> {
  const url = new URL(c.req.url);
  return sha256Hex(`${c.req.method} ${url.pathname}${url.search}\n${await c.req.text()}`);
}

/**
 * A change (POST/PATCH/DELETE). With an Idempotency-Key, the key is claimed first (scope: org + the calling
 * API key + key); the change, its audit rows and the stored replay envelope then commit in one transaction,
 * so no request with a key can cause its side effect twice. A 4xx answer is stored like a success (the same
 * request gets the same answer); on a 5xx the claim is released so the client can retry. Secrets in an
 * answer are never stored: their replay carries `secret: null`.
 */
export async function mutation<T extends Response>(
  c: Context<ApiEnv>,
  fn: (s: RequestScope) => Promise<T>,
): Promise<T> {
  const db = c.get("db");
  const { orgId, keyId } = c.get("auth");
  const now = c.get("now");
  const key = c.req.header("Idempotency-Key");
  if (key !== undefined && (key.length === 0 || key.length > MAX_IDEMPOTENCY_KEY_LENGTH)) {
    throw new ApiError(
      "invalid_idempotency_key",
      `Idempotency-Key must be 1 to ${MAX_IDEMPOTENCY_KEY_LENGTH} characters.`,
    );
  }
  const idem: IdempotencyScope | undefined = key === undefined ? undefined : { orgId, apiKeyId: keyId, key };
  if (idem) {
    const claim = await claimIdempotencyKey(db, idem, await requestFingerprint(c), now);
    if (claim.kind === "reused") {
      throw new ApiError("idempotency_key_reused", "This Idempotency-Key was used with a different request.");
    }
    if (claim.kind === "in_use") {
      throw new ApiError(
        "idempotency_key_in_use",
        "A request with this Idempotency-Key is still in progress; retry shortly.",
      );
    }
    if (claim.kind === "replay") {
      c.header("Idempotent-Replayed", "true");
      // The stored envelope is untyped JSON (status and body as the first answer had them), so the compiler
      // cannot see it as T: this is the one unchecked answer. It is honest because only what `fn` returned
      // (checked as T against the route's schemas) or an errorBody() for a stored 4xx is ever stored.
      if (claim.status === 204) return c.body(null, 204) as unknown as T;
      return c.json(claim.body as object, claim.status as ContentfulStatusCode) as unknown as T;
    }
  }
  try {
    return await withTenant(db, orgId, async (tx) => {
      const response = await fn(scope(c, tx));
      if (idem) {
        const body = response.status === 204 ? null : await response.clone().json();
        await completeIdempotencyKey(tx, idem, { status: response.status, body }, now);
      }
      return response;
    });
  } catch (error) {
    if (idem) {
      // 401/403/429 say nothing about the request itself: like the checks before this layer, not stored.
      if (error instanceof ApiError && error.status < 500 && ![401, 403, 429].includes(error.status)) {
        const envelope = { status: error.status, body: errorBody(error, c.get("requestId")) };
        await withTenant(db, orgId, (tx) => completeIdempotencyKey(tx, idem, envelope, now));
      } else {
        await releaseIdempotencyKey(db, idem);
      }
    }
    throw error;
  }
}

/** Writes the audit row for a change, in the change's own transaction. */
export function audit(
  s: RequestScope,
  action: string,
  resource: { type: string; id: string },
  change: { before?: unknown; after?: unknown },
): Promise<void> {
  return writeAudit(
    s.tx,
    s.orgId,
    {
      actor: s.actor,
      action,
      resourceType: resource.type,
      resourceId: resource.id,
      requestId: s.requestId,
      ...change,
    },
    s.now,
  );
}
