import type { Context } from "hono";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import type { VerbContext } from "../../functions/context";
import {
  claimIdempotencyKey,
  completeIdempotencyKey,
  type IdempotencyScope,
  MAX_IDEMPOTENCY_KEY_LENGTH,
  releaseIdempotencyKey,
} from "../../functions/idempotency/idempotencyKeys";
import { type Db, type Tx, withTenant } from "../../shared/db";
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

/**
 * The Idempotency-Key layer shared by the two kinds of change: claim, replay, and the stored envelope.
 * `run` applies the change and calls `complete` inside its last transaction.
 */
async function idempotent<T extends Response>(
  c: Context<ApiEnv>,
  run: (complete: (tx: Tx, response: T) => Promise<void>) => Promise<T>,
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
    return await run(async (tx, response) => {
      if (!idem) return;
      const body = response.status === 204 ? null : await response.clone().json();
      await completeIdempotencyKey(tx, idem, { status: response.status, body }, now);
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

/**
 * A change (POST/PATCH/DELETE). With an Idempotency-Key, the key is claimed first (scope: org + the calling
 * API key + key); the change, its audit rows and the stored replay envelope then commit in one transaction,
 * so no request with a key can cause its side effect twice. A 4xx answer is stored like a success (the same
 * request gets the same answer); on a 5xx the claim is released so the client can retry. Secrets in an
 * answer are never stored: their replay carries `secret: null`.
 */
export function mutation<T extends Response>(
  c: Context<ApiEnv>,
  fn: (ctx: VerbContext) => Promise<T>,
): Promise<T> {
  return idempotent(c, (complete) =>
    withTenant(c.get("db"), c.get("auth").orgId, async (tx) => {
      const response = await fn(verbContext(c, tx));
      await complete(tx, response);
      return response;
    }),
  );
}

/**
 * A change that calls an outside platform between its read and its write (a destination test-send). The
 * call may take seconds, so no transaction, and no pooled connection, is held during it: `load` runs in one
 * short tenant transaction, `call` in none, and `record` (the audit row and the stored replay envelope) in
 * a second short one. Idempotency works as for `mutation`: the key is claimed before `load`, so a second
 * request with the same key while the platform is being called gets 409 idempotency_key_in_use, and a
 * replay returns the first answer without calling the platform again. What this gives up: the audit row no
 * longer commits in the transaction that read the destination; a destination deleted during the call is
 * still recorded as test-sent, which is what happened.
 */
export function mutationWithCall<L, R, T extends Response>(
  c: Context<ApiEnv>,
  steps: {
    load: (ctx: VerbContext) => Promise<L>;
    call: (loaded: L) => Promise<R>;
    record: (ctx: VerbContext, called: R) => Promise<T>;
  },
): Promise<T> {
  const db = c.get("db");
  const orgId = c.get("auth").orgId;
  return idempotent(c, async (complete) => {
    const loaded = await withTenant(db, orgId, (tx) => steps.load(verbContext(c, tx)));
    const called = await steps.call(loaded);
    return withTenant(db, orgId, async (tx) => {
      const response = await steps.record(verbContext(c, tx), called);
      await complete(tx, response);
      return response;
    });
  });
}
