import { ApiError } from "../../shared/errors";
import { audit } from "../audit/writeAudit";
import { found, type VerbContext } from "../context";
import { visibleProject } from "../projects/verbs";
import { resolveSubject, type SubjectInput } from "../userData/subject";
import {
  createDeletionRequest,
  type DeletionRequest,
  type DeletionStatus,
  getDeletionRequest,
  listDeletionRequests,
} from "./store";

/**
 * Records a deletion request for a subject (the Cron Worker executes it), or returns the one already open.
 * The receipt is the request's public shape; with `suppress`, the identifiers' suppression is audited too.
 */
export async function requestDeletion(
  ctx: VerbContext,
  projectId: string,
  input: SubjectInput,
  suppress: boolean,
): Promise<DeletionRequest> {
  await visibleProject(ctx, projectId);
  const subject = await resolveSubject(input);
  if (!subject) throw new ApiError("invalid_request", "The identifiers are empty after normalization.");
  const result = await createDeletionRequest(ctx.db, {
    orgId: ctx.orgId,
    projectId,
    subject,
    suppress,
    now: ctx.now,
    requestId: ctx.requestId,
    requestedBy: ctx.actor.id,
  });
  const resource = { type: "deletion_request", id: result.request.id };
  if (result.created) await audit(ctx, "deletion_request.created", resource, { after: result.request });
  if (result.suppressionAdded) {
    await audit(ctx, "suppression.created", resource, { after: { subject: result.request.subject } });
  }
  return result.request;
}

/** A receipt the caller may see: a restricted key sees its own project's only. */
export async function visibleDeletionRequest(ctx: VerbContext, id: string): Promise<DeletionRequest> {
  const request = await getDeletionRequest(ctx.db, id);
  return found(
    ctx.projectId && request?.projectId !== ctx.projectId ? null : request,
    `No deletion request ${id}.`,
  );
}

export async function listVisibleDeletionRequests(
  ctx: VerbContext,
  filter: {
    limit: number;
    startingAfter?: string | undefined;
    status?: DeletionStatus | undefined;
    projectId?: string | undefined;
  },
): Promise<{ data: DeletionRequest[]; hasMore: boolean }> {
  // A restricted key asking for another project's requests gets none (not a 404: a filter matched nothing).
  if (ctx.projectId && filter.projectId && filter.projectId !== ctx.projectId)
    return { data: [], hasMore: false };
  return listDeletionRequests(ctx.db, { ...filter, projectId: ctx.projectId ?? filter.projectId });
}
