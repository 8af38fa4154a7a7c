import { ApiError } from "../../shared/errors";
import { hasRole, type Role } from "../../shared/roles";
import { audit } from "../audit/writeAudit";
import { found, transactionOf, type VerbContext } from "../context";
import { getProject } from "../projects/store";
import { emitWebhookEvent } from "../webhooks/outbox";
import {
  type ApiKey,
  type CreatedApiKey,
  createApiKey,
  getApiKey,
  type KeyMode,
  listApiKeys,
  type RevokeRefusal,
  revokeApiKey,
  rotateApiKey,
} from "./store";

/** An API key as the API shows it and as its audit rows record it: never the secret. */
export function apiKeyJson(k: ApiKey) {
  return {
    id: k.id,
    object: "api_key" as const,
    name: k.name,
    role: k.role,
    projectId: k.projectId,
    mode: k.mode,
    displayPrefix: k.displayPrefix,
    createdAt: k.createdAt.toISOString(),
    expiresAt: k.expiresAt?.toISOString() ?? null,
    revokedAt: k.revokedAt?.toISOString() ?? null,
    rotatedTo: k.rotatedTo,
  };
}

/** The api_key.* webhook: which key, its role and scope; never its name (free text) or any of its secret. */
function emitKeyEvent(ctx: VerbContext, type: "api_key.created" | "api_key.revoked", k: ApiKey) {
  return emitWebhookEvent(transactionOf(ctx), {
    orgId: ctx.orgId,
    type,
    payload: { apiKeyId: k.id, role: k.role, mode: k.mode, projectId: k.projectId, link: "/v1/api-keys" },
    now: ctx.now,
  });
}

/** A key may not hand out (or take away) more than it has: no role above its own. */
function checkGrant(ctx: VerbContext, role: Role) {
  if (!hasRole(ctx.role, role))
    throw new ApiError("forbidden", `A ${ctx.role} key cannot create, rotate or revoke a ${role} key.`);
}

export async function issueApiKey(
  ctx: VerbContext,
  input: { name: string; role: Role; projectId?: string | null | undefined; mode: KeyMode },
): Promise<CreatedApiKey> {
  checkGrant(ctx, input.role);
  if (input.projectId) found(await getProject(ctx.db, input.projectId), `No project ${input.projectId}.`);
  const created = await createApiKey(ctx.db, ctx.orgId, input, ctx.now);
  await audit(ctx, "api_key.created", { type: "api_key", id: created.id }, { after: apiKeyJson(created) });
  await emitKeyEvent(ctx, "api_key.created", created);
  return created;
}

export function listOrgApiKeys(
  ctx: VerbContext,
  page: { limit: number; startingAfter?: string | undefined },
): Promise<{ data: ApiKey[]; hasMore: boolean }> {
  return listApiKeys(ctx.db, page);
}

/** A new secret now; the old one stops after `gracePeriodSeconds` (0: at once). */
export async function rotateOrgApiKey(
  ctx: VerbContext,
  keyId: string,
  gracePeriodSeconds: number,
): Promise<CreatedApiKey> {
  const current = found(await getApiKey(ctx.db, keyId), `No API key ${keyId}.`);
  checkGrant(ctx, current.role);
  const rotated = await rotateApiKey(ctx.db, ctx.orgId, keyId, gracePeriodSeconds, ctx.now);
  if (!rotated)
    throw new ApiError("conflict", `API key ${keyId} is revoked or expired; create a new key instead.`);
  await audit(
    ctx,
    "api_key.created",
    { type: "api_key", id: rotated.created.id },
    { after: apiKeyJson(rotated.created) },
  );
  await audit(
    ctx,
    "api_key.rotated",
    { type: "api_key", id: keyId },
    { before: apiKeyJson(current), after: apiKeyJson(rotated.old) },
  );
  await emitKeyEvent(ctx, "api_key.created", rotated.created);
  return rotated.created;
}

export async function revokeOrgApiKey(ctx: VerbContext, keyId: string): Promise<ApiKey> {
  const target = found(await getApiKey(ctx.db, keyId), `No API key ${keyId}.`);
  // Revoking is as strong as creating: an admin key cannot revoke an owner key.
  checkGrant(ctx, target.role);
  const revoked = await revokeApiKey(ctx.db, ctx.orgId, keyId, ctx.now);
  if ("refused" in revoked) throw revokeRefusal(revoked.refused, keyId);
  await audit(
    ctx,
    "api_key.revoked",
    { type: "api_key", id: keyId },
    { before: apiKeyJson(revoked.before), after: apiKeyJson(revoked.after) },
  );
  await emitKeyEvent(ctx, "api_key.revoked", revoked.after);
  return revoked.after;
}

function revokeRefusal(refused: RevokeRefusal, keyId: string): ApiError {
  switch (refused) {
    case "not_found":
      return new ApiError("not_found", `No API key ${keyId}.`);
    case "already_revoked":
      return new ApiError("conflict", `API key ${keyId} is already revoked or expired.`);
    case "last_owner_key":
      return new ApiError(
        "conflict",
        "This is the org's last live owner key; create another owner key before revoking it.",
      );
  }
}
