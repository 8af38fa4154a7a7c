import type { Context } from "hono";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import type { VerbContext } from "../../functions/context";
import {
  type Claim,
  claimIdempotencyKey,
  claimIdempotencyKeyInTransaction,
  completeIdempotencyKey,
  type IdempotencyScope,
  MAX_IDEMPOTENCY_KEY_LENGTH,
  releaseIdempotencyKey,
  storeIdempotentAnswer,
} from "../../functions/idempotency/idempotencyKeys";
import { type Db, withTenant } from "../../shared/db";
import { ApiError, errorBody } from "../../shared/errors";
import { sha256Hex } from "../../shared/hash";
import type { ApiEnv } from "./context";

// Every route handler goes through query(), mutation() or mutationWithCall(), so tenancy, roles and
// idempotency are applied the same way everywhere. They run after request validation: a 400 for a bad
// body is never stored.

/** The verb context of this request, over `db`: the request's tenant transaction or its HTTP read handle. */
export function verbContext(c: Context<ApiEnv>, db: Db): VerbContext {
  const auth = c.get("auth");
  return {
    db,
    orgId: auth.orgId,
    actor: { type: "api_key", id: auth.keyId },
    role: auth.role,
    projectId: auth.projectId,
    now: c.get("now"),
    requestId: c.get("requestId"),
    log: c.get("log"),
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
  fn: (ctx: VerbContext) => Promise<T>,
): Promise<T> {
  // Each query of this handle runs as its own read-only transaction, and it refuses to open another.
  return fn(verbContext(c, c.get("reads").as(c.get("auth").orgId)));
}

/** What identifies "the same request" for an Idempotency-Key: method, path with query string, body. */
async function requestFingerprint(c: Context<ApiEnv>): Promise<string> {
  const url = new URL(c.req.url);
  return sha256Hex(`${c.req.method} ${url.pathname}${url.search}\n${await c.req.text()}`);
}

/** The request's Idempotency-Key scope (org + the calling API key + key), or undefined without the header. */
function idempotencyScope(c: Context<ApiEnv>): IdempotencyScope | undefined {
  const { orgId, keyId } = c.get("auth");
  const key = c.req.header("Idempotency-Key");
  if (key === undefined) return undefined;
  if (key.length === 0 || key.length > MAX_IDEMPOTENCY_KEY_LENGTH) {
    throw new ApiError(
      "invalid_idempotency_key",
      `Idempotency-Key must be 1 to ${MAX_IDEMPOTENCY_KEY_LENGTH} characters.`,
    );
  }
  return { orgId, apiKeyId: keyId, key };
}

/** A claim that did not win: the replayed first answer, or the error saying why the request cannot run. */
function answerUnclaimed<T extends Response>(
  c: Context<ApiEnv>,
  claim: Exclude<Claim, { kind: "claimed" }>,
): T {
  if (claim.kind === "reused") {
    throw new ApiError("idempotency_key_reused", "This Idempotency-Key was used with a different request.");
  }
  if (claim.kind === "in_use") {
    throw new ApiError(
      "idempotency_key_in_use",
      "A request with this Idempotency-Key is still in progress; retry shortly.",
    );
  }
  c.header("Idempotent-Replayed", "true");
  // The stored envelope is untyped JSON (status and body as the first answer had them), so the compiler
  // cannot see it as T: this is the one unchecked answer. It is honest because only what a handler returned
  // (checked as T against the route's schemas) or an errorBody() for a stored 4xx is ever stored.
  if (claim.status === 204) return c.body(null, 204) as unknown as T;
  return c.json(claim.body as object, claim.status as ContentfulStatusCode) as unknown as T;
}

/** 401/403/429 say nothing about the request itself: like the checks before the idempotency layer, never stored. */
function isStorableError(error: unknown): error is ApiError {
  return error instanceof ApiError && error.status < 500 && ![401, 403, 429].includes(error.status);
}

async function envelopeOf(response: Response): Promise<{ status: number; body: unknown }> {
  return { status: response.status, body: response.status === 204 ? null : await response.clone().json() };
}

/**
 * A change (POST/PATCH/DELETE) in one tenant transaction. With an Idempotency-Key (scope: org + the calling
 * API key + key), the key is claimed first in that same transaction, and the change, its audit rows and the
 * stored replay envelope commit with the claim, so no request with a key can cause its side effect twice;
 * a request with the same key arriving meanwhile waits for the first to end, then replays its answer. A 4xx
 * answer is stored like a success (the same request gets the same answer), in a transaction of its own
 * after the change rolled back; on a 5xx the rollback takes the claim with it, so the client can retry.
 * Secrets in an answer are never stored: their replay carries `secret: null`.
 */
export async function mutation<T extends Response>(
  c: Context<ApiEnv>,
  fn: (ctx: VerbContext) => Promise<T>,
): Promise<T> {
  const db = c.get("db");
  const orgId = c.get("auth").orgId;
  const now = c.get("now");
  const idem = idempotencyScope(c);
  if (!idem) return withTenant(db, orgId, (tx) => fn(verbContext(c, tx)));
  const fingerprint = await requestFingerprint(c);
  let claimed = false;
  try {
    return await withTenant(db, orgId, async (tx) => {
      const claim = await claimIdempotencyKeyInTransaction(tx, idem, fingerprint, now);
      if (claim.kind !== "claimed") return answerUnclaimed<T>(c, claim);
      claimed = true;
      const response = await fn(verbContext(c, tx));
      await completeIdempotencyKey(tx, idem, await envelopeOf(response), now);
      return response;
    });
  } catch (error) {
    if (claimed && isStorableError(error)) {
      const envelope = { status: error.status, body: errorBody(error, c.get("requestId")) };
      await withTenant(db, orgId, (tx) => storeIdempotentAnswer(tx, idem, fingerprint, envelope, now));
    }
    throw error;
  }
}

/**
 * A change that calls an outside platform between its read and its write (a destination test-send). The
 * call may take seconds, so no transaction, and no pooled connection, is held during it: `load` runs in one
 * short tenant transaction, `call` in none, and `record` (the audit row and the stored replay envelope) in
 * a second short one. The Idempotency-Key is claimed before `load` in a committed transaction of its own (a
 * claim inside `load`'s would not hold across the call), so a second request with the same key while the
 * platform is being called gets 409 idempotency_key_in_use; a 5xx releases the claim; and a
 * replay returns the first answer without calling the platform again. What this gives up: the audit row no
 * longer commits in the transaction that read the destination; a destination deleted during the call is
 * still recorded as test-sent, which is what happened.
 */
export async function mutationWithCall<L, R, T extends Response>(
  c: Context<ApiEnv>,
  steps: {
    load: (ctx: VerbContext) => Promise<L>;
    call: (loaded: L) => Promise<R>;
    record: (ctx: VerbContext, called: R) => Promise<T>;
    /**
     * What a replay answers, where it must differ from the live answer: a body that is not JSON (media
     * bytes), or one holding what must not be stored (a signed URL). Default: the live answer as it is.
     */
    envelope?: (called: R, response: T) => { status: number; body: unknown };
  },
): Promise<T> {
  const db = c.get("db");
  const orgId = c.get("auth").orgId;
  const now = c.get("now");
  const idem = idempotencyScope(c);
  if (idem) {
    // Claimed in a committed transaction of its own: the platform call runs outside any transaction.
    const claim = await claimIdempotencyKey(db, idem, await requestFingerprint(c), now);
    if (claim.kind !== "claimed") return answerUnclaimed<T>(c, claim);
  }
  try {
    const loaded = await withTenant(db, orgId, (tx) => steps.load(verbContext(c, tx)));
    const called = await steps.call(loaded);
    return await withTenant(db, orgId, async (tx) => {
      const response = await steps.record(verbContext(c, tx), called);
      if (idem) {
        const envelope = steps.envelope ? steps.envelope(called, response) : await envelopeOf(response);
        await completeIdempotencyKey(tx, idem, envelope, now);
      }
      return response;
    });
  } catch (error) {
    if (idem) {
      if (isStorableError(error)) {
        const envelope = { status: error.status, body: errorBody(error, c.get("requestId")) };
        await withTenant(db, orgId, (tx) => completeIdempotencyKey(tx, idem, envelope, now));
      } else {
        await releaseIdempotencyKey(db, idem);
      }
    }
    throw error;
  }
}
