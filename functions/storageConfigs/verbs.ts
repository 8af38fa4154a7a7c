import { ApiError } from "../../shared/errors";
import { audit } from "../audit/writeAudit";
import { checkEndpointUrl, type EndpointPolicy } from "../content/endpointUrl";
import { found, type VerbContext } from "../context";
import { type KeyringSource, keyringOf, readingTokens } from "../destinations/verbs";
import type { ProbeResult } from "./probe";
import {
  countOpenJobsUsing,
  countStorageConfigs,
  deleteStorageConfig,
  getStorageConfig,
  insertStorageConfig,
  listStorageConfigs,
  loadStorageTarget,
  lockOrgStorageConfigs,
  lockStorageConfig,
  type StorageConfigInput,
  type StorageConfigView,
  type StorageTarget,
  setCheckResult,
} from "./store";

// Storage configs: a partner's own S3-compatible bucket for generated content, org-wide. The secret access
// key is write-only: no answer, audit row, log line or stored idempotent replay ever holds it, only
// `secretLast4`. It is sealed with the destination keyring (functions/content/storageSecret.ts).

/** At most this many configs per org: a bucket per brand or environment, not one per job. */
export const MAX_STORAGE_CONFIGS_PER_ORG = 20;

/** A config as the API shows it and as its audit rows record it. */
export function storageConfigJson(v: StorageConfigView) {
  return {
    id: v.id,
    object: "storage_config" as const,
    name: v.name,
    endpoint: v.endpoint,
    region: v.region,
    bucket: v.bucket,
    prefix: v.prefix,
    forcePathStyle: v.forcePathStyle,
    accessKeyId: v.accessKeyId,
    secretLast4: v.secretLast4,
    checkedAt: v.checkedAt?.toISOString() ?? null,
    checkStatus: v.checkStatus,
    createdAt: v.createdAt.toISOString(),
    updatedAt: v.updatedAt.toISOString(),
  };
}

const noConfig = (id: string) => `No storage config ${id}.`;

/** Validated input before the endpoint check; `name` defaults to the bucket. */
export interface NewStorageConfig extends Omit<StorageConfigInput, "name"> {
  name?: string | undefined;
}

/** A prefix is a folder: stored with one trailing "/" (or empty, the bucket's root). */
export function normalisePrefix(prefix: string): string {
  return prefix === "" || prefix.endsWith("/") ? prefix : `${prefix}/`;
}

export async function createStorageConfig(
  ctx: VerbContext,
  input: NewStorageConfig,
  keys: KeyringSource,
  policy: EndpointPolicy,
): Promise<StorageConfigView> {
  const endpoint = checkEndpointUrl(input.endpoint, policy);
  if (!endpoint.ok) {
    throw new ApiError("invalid_request", `endpoint: ${endpoint.message}`, {
      details: [{ field: "endpoint", message: endpoint.message, reason: endpoint.reason }],
    });
  }
  const keyring = keyringOf(ctx, keys);
  await lockOrgStorageConfigs(ctx.db, ctx.orgId);
  if ((await countStorageConfigs(ctx.db)) >= MAX_STORAGE_CONFIGS_PER_ORG) {
    throw new ApiError(
      "storage_config_limit_reached",
      `An org has at most ${MAX_STORAGE_CONFIGS_PER_ORG} storage configs; delete one first.`,
    );
  }
  const created = await insertStorageConfig(
    ctx.db,
    ctx.orgId,
    {
      ...input,
      name: input.name ?? input.bucket,
      endpoint: endpoint.url,
      prefix: normalisePrefix(input.prefix),
    },
    keyring,
    ctx.now,
  );
  await audit(
    ctx,
    "storage_config.created",
    { type: "storage_config", id: created.id },
    { after: storageConfigJson(created) },
  );
  return created;
}

export function listOrgStorageConfigs(
  ctx: VerbContext,
  page: { limit: number; startingAfter?: string | undefined },
) {
  return listStorageConfigs(ctx.db, page);
}

export async function getOrgStorageConfig(ctx: VerbContext, id: string): Promise<StorageConfigView> {
  return found(await getStorageConfig(ctx.db, id), noConfig(id));
}

/**
 * Deletes a config and its sealed secret. Refused (409 storage_config_in_use) while a content job that
 * writes to it is queued or running: the job would lose its credentials halfway. Finished jobs keep the
 * id as a plain reference (their record outlives the config).
 */
export async function deleteOrgStorageConfig(ctx: VerbContext, id: string): Promise<void> {
  const config = found(await lockStorageConfig(ctx.db, id), noConfig(id));
  const open = await countOpenJobsUsing(ctx.db, id);
  if (open > 0) {
    throw new ApiError(
      "storage_config_in_use",
      `Storage config ${id} is used by ${open} content job(s) still queued or running; retry when they finish.`,
    );
  }
  await deleteStorageConfig(ctx.db, id);
  await audit(
    ctx,
    "storage_config.deleted",
    { type: "storage_config", id },
    { before: storageConfigJson(config) },
  );
}

/** The answer of a check. */
export interface StorageCheckAnswer {
  object: "storage_config_check";
  storageConfigId: string;
  status: ProbeResult["status"];
  step: ProbeResult["step"];
  error: (NonNullable<ProbeResult["error"]> & { message: string }) | null;
  checkedAt: string;
}

const CHECK_MESSAGES: Record<NonNullable<ProbeResult["error"]>["code"], string> = {
  credentials_rejected: "The endpoint did not accept the access key id or secret access key.",
  access_denied: "The credentials were accepted but may not write and delete objects under the prefix.",
  bucket_not_found: "The endpoint has no bucket of that name.",
  endpoint_unreachable: "The endpoint could not be reached (connection, DNS or TLS failure, or timeout).",
  unexpected_response: "The endpoint answered with an unexpected error.",
};

/** Check step 1, in a short transaction: the config, its secret decrypted (in memory only). */
export async function loadStorageCheck(
  ctx: VerbContext,
  id: string,
  keys: KeyringSource,
): Promise<StorageTarget> {
  // Existence first, so another org's id is a 404 even where the keyring is missing.
  found(await getStorageConfig(ctx.db, id), noConfig(id));
  const keyring = keyringOf(ctx, keys);
  return found(
    await readingTokens(ctx, () => loadStorageTarget(ctx.db, ctx.orgId, id, keyring)),
    noConfig(id),
  );
}

/**
 * Check step 3, in a short transaction: the result on the config (if it still exists) and the audit row.
 * A config deleted during the probe is still recorded as checked, which is what happened.
 */
export async function recordStorageCheck(
  ctx: VerbContext,
  id: string,
  result: ProbeResult,
): Promise<StorageCheckAnswer> {
  await setCheckResult(ctx.db, id, result.status, ctx.now);
  const answer: StorageCheckAnswer = {
    object: "storage_config_check",
    storageConfigId: id,
    status: result.status,
    step: result.step,
    error: result.error ? { ...result.error, message: CHECK_MESSAGES[result.error.code] } : null,
    checkedAt: ctx.now.toISOString(),
  };
  await audit(
    ctx,
    "storage_config.checked",
    { type: "storage_config", id },
    { after: { status: answer.status, step: answer.step, errorCode: answer.error?.code ?? null } },
  );
  return answer;
}
