import { ApiError } from "../../shared/errors";
import { audit } from "../audit/writeAudit";
import { found, type VerbContext } from "../context";
import { changeableProject, visibleProject } from "../projects/verbs";
import { type CreatedSdkKey, createSdkKey, getSdkKey, listSdkKeys, revokeSdkKey, type SdkKey } from "./store";

/** An SDK key as the API shows it and as its audit rows record it: never the secret. */
export function sdkKeyJson(k: SdkKey) {
  return {
    id: k.id,
    object: "sdk_key" as const,
    projectId: k.projectId,
    displayPrefix: k.displayPrefix,
    createdAt: k.createdAt.toISOString(),
    revokedAt: k.revokedAt?.toISOString() ?? null,
  };
}

export async function issueSdkKey(ctx: VerbContext, projectId: string): Promise<CreatedSdkKey> {
  const project = await changeableProject(ctx, projectId);
  const created = await createSdkKey(ctx.db, ctx.orgId, project.id);
  await audit(ctx, "sdk_key.created", { type: "sdk_key", id: created.id }, { after: sdkKeyJson(created) });
  return created;
}

export async function listProjectSdkKeys(
  ctx: VerbContext,
  projectId: string,
  page: { limit: number; startingAfter?: string | undefined },
): Promise<{ data: SdkKey[]; hasMore: boolean }> {
  const project = await visibleProject(ctx, projectId);
  return listSdkKeys(ctx.db, project.id, page);
}

export async function revokeProjectSdkKey(
  ctx: VerbContext,
  projectId: string,
  keyId: string,
): Promise<SdkKey> {
  await visibleProject(ctx, projectId);
  const before = found(
    await getSdkKey(ctx.db, projectId, keyId),
    `No SDK key ${keyId} in project ${projectId}.`,
  );
  if (!(await revokeSdkKey(ctx.db, keyId, ctx.now)))
    throw new ApiError("conflict", `SDK key ${keyId} is already revoked.`);
  const after = { ...before, revokedAt: ctx.now };
  await audit(
    ctx,
    "sdk_key.revoked",
    { type: "sdk_key", id: keyId },
    { before: sdkKeyJson(before), after: sdkKeyJson(after) },
  );
  return after;
}
