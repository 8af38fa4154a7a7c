import { ApiError } from "../../shared/errors";
import { sha256Hex } from "../../shared/hash";
import { audit } from "../audit/writeAudit";
import { found, type VerbContext } from "../context";
import { visibleProject } from "../projects/verbs";
import { liftSuppression, listSuppressions, type Suppression, type SuppressionType } from "./store";

export async function listProjectSuppressions(
  ctx: VerbContext,
  projectId: string,
  page: { limit: number; startingAfter?: string | undefined },
): Promise<{ data: Suppression[]; hasMore: boolean }> {
  await visibleProject(ctx, projectId);
  return listSuppressions(ctx.db, projectId, page);
}

/**
 * Lifts a suppression, so later events for the identifier are stored again. A user id is named as sent
 * (it is hashed here); an email or phone only by its SHA-256 digest, never the raw value.
 */
export async function liftProjectSuppression(
  ctx: VerbContext,
  projectId: string,
  kind: "users" | "emails" | "phones",
  value: string,
): Promise<void> {
  await visibleProject(ctx, projectId);
  if (kind !== "users" && !/^[0-9a-fA-F]{64}$/.test(value)) {
    throw new ApiError("invalid_request", `${kind}: pass the SHA-256 digest, never the raw value.`);
  }
  const type: SuppressionType = kind === "users" ? "user_id" : kind === "emails" ? "email" : "phone";
  const digest = kind === "users" ? await sha256Hex(value) : value.toLowerCase();
  const lifted = found(
    await liftSuppression(ctx.db, projectId, type, digest),
    "No such suppression in this project.",
  );
  await audit(
    ctx,
    "suppression.lifted",
    { type: "suppression", id: `${projectId}:${type}:${digest}` },
    { before: { identifierType: type, identifierSha256: digest, ...lifted } },
  );
}
