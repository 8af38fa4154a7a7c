import type { DestinationKind, Keyring } from "../../shared/destinations";
import { ApiError } from "../../shared/errors";
import { audit } from "../audit/writeAudit";
import { found, type VerbContext } from "../context";
import { requireLayer } from "../projects/layers";
import { changeableProject, visibleProject } from "../projects/verbs";
import { KeyringError, TokenDecryptError } from "./crypto";
import {
  type DestinationInput,
  type DestinationView,
  deleteDestination,
  getDestination,
  listDestinations,
  putDestination,
} from "./store";

// Conversion-relay destinations, one per project and platform. The access token is write-only: no answer,
// audit row or log line ever holds it, only `tokenLast4`.

/** A destination as the API shows it and as its audit rows record it. */
export function destinationJson(d: DestinationView) {
  return {
    object: "destination" as const,
    projectId: d.projectId,
    kind: d.kind,
    enabled: d.enabled,
    status: d.status,
    failingSince: d.failingSince?.toISOString() ?? null,
    tokenLast4: d.tokenLast4,
    ...(d.kind === "meta"
      ? { datasetId: d.datasetId, testEventCode: d.testEventCode, sendDeviceIds: d.sendDeviceIds }
      : {}),
    ...(d.kind === "tiktok" ? { pixelCode: d.pixelCode, testEventCode: d.testEventCode } : {}),
    createdAt: d.createdAt.toISOString(),
    updatedAt: d.updatedAt.toISOString(),
  };
}

/** Reads the keyring from the Worker's secrets; throws KeyringError when they are missing or malformed. */
export type KeyringSource = () => Keyring;

/** The keyring; a deployment without one answers 503, never with a stack trace. */
export function keyringOf(ctx: VerbContext, source: KeyringSource): Keyring {
  try {
    return source();
  } catch (error) {
    if (!(error instanceof KeyringError)) throw error;
    ctx.log.error("destination keyring unavailable", { reason: error.message });
    throw new ApiError(
      "destination_keys_unavailable",
      "Destination tokens cannot be encrypted or read right now.",
    );
  }
}

/** A stored token whose key left the ring is an operator's rotation gone wrong, not the caller's request. */
export async function readingTokens<T>(ctx: VerbContext, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    if (!(error instanceof TokenDecryptError)) throw error;
    ctx.log.error("destination token unreadable", { reason: error.message });
    throw new ApiError(
      "destination_keys_unavailable",
      "The stored token cannot be decrypted (its key is no longer configured); PUT the token again.",
    );
  }
}

export const noDestination = (projectId: string, kind: DestinationKind) =>
  `Project ${projectId} has no ${kind} destination.`;

/** Creates or replaces a project's destination of one kind; `true` in `created` for a new one. */
export async function putProjectDestination(
  ctx: VerbContext,
  projectId: string,
  input: DestinationInput,
  keys: KeyringSource,
): Promise<{ destination: DestinationView; created: boolean }> {
  await changeableProject(ctx, projectId);
  // A project with its attribution layer off relays nothing: configuring where it would relay is refused.
  await requireLayer(ctx.db, projectId, "attribution");
  // Apple has no token, so it needs no keyring: it works even where the secrets are not set up yet.
  const keyring = input.kind === "apple-search-ads" ? { currentKeyId: "", keys: {} } : keyringOf(ctx, keys);
  const outcome = await readingTokens(ctx, () =>
    putDestination(ctx.db, ctx.orgId, projectId, input, keyring, ctx.now),
  );
  if (!outcome.ok) {
    throw new ApiError("invalid_request", "accessToken is required when creating this destination.", {
      details: [{ field: "accessToken", message: "Required when the destination does not exist yet." }],
    });
  }
  await audit(
    ctx,
    outcome.before ? "destination.updated" : "destination.created",
    { type: "destination", id: `${projectId}/${input.kind}` },
    {
      ...(outcome.before ? { before: { ...destinationJson(outcome.before), tokenReplaced: false } } : {}),
      // tokenReplaced shows a new token in the diff even when its last four characters are the same.
      after: {
        ...destinationJson(outcome.after),
        tokenReplaced: "accessToken" in input && input.accessToken !== undefined,
      },
    },
  );
  return { destination: outcome.after, created: outcome.before === null };
}

export async function listProjectDestinations(
  ctx: VerbContext,
  projectId: string,
): Promise<DestinationView[]> {
  await visibleProject(ctx, projectId);
  return listDestinations(ctx.db, projectId);
}

export async function getProjectDestination(
  ctx: VerbContext,
  projectId: string,
  kind: DestinationKind,
): Promise<DestinationView> {
  await visibleProject(ctx, projectId);
  return found(await getDestination(ctx.db, projectId, kind), noDestination(projectId, kind));
}

/** Removes a destination and its stored token. */
export async function deleteProjectDestination(
  ctx: VerbContext,
  projectId: string,
  kind: DestinationKind,
): Promise<void> {
  await visibleProject(ctx, projectId);
  const removed = found(await deleteDestination(ctx.db, projectId, kind), noDestination(projectId, kind));
  await audit(
    ctx,
    "destination.deleted",
    { type: "destination", id: `${projectId}/${kind}` },
    { before: destinationJson(removed) },
  );
}
