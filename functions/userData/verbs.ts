import { ApiError } from "../../shared/errors";
import type { VerbContext } from "../context";
import { visibleProject } from "../projects/verbs";
import { lookupUsers } from "./lookupUsers";
import {
  type EventFilter,
  eventCursor,
  getAppleAttribution,
  getUserState,
  linkedAnonymousIds,
  type UserEvent,
  userEventsPage,
} from "./store";
import { resolveSubject, type SubjectInput } from "./subject";

// Access and portability (data-subject requests): what we hold for one end user, and the lookup from an
// email/phone a partner holds to the user ids we know. Reads only: no audit row.

/**
 * What we hold about one user besides their events: the anonymous ids identify linked to them, their
 * current state and Apple attribution.
 */
export async function userDataHeader(ctx: VerbContext, projectId: string, userId: string) {
  await visibleProject(ctx, projectId);
  const user = await getUserState(ctx.db, projectId, userId);
  const appleAttribution = await getAppleAttribution(ctx.db, projectId, userId);
  const anonymousIds = await linkedAnonymousIds(ctx.db, projectId, userId);
  return { object: "user_data" as const, projectId, userId, anonymousIds, user, appleAttribution };
}

/** One page of a user's events after the event `startingAfter` names (a 400 when it names none of theirs). */
export async function userEvents(
  ctx: VerbContext,
  projectId: string,
  userId: string,
  filter: EventFilter,
  page: { limit: number; startingAfter?: string | undefined },
): Promise<{ data: UserEvent[]; hasMore: boolean; nextCursor: string | null }> {
  let cursor = null;
  if (page.startingAfter) {
    cursor = await eventCursor(ctx.db, projectId, userId, page.startingAfter);
    if (!cursor)
      throw new ApiError("invalid_request", `starting_after: no event ${page.startingAfter} for this user.`);
  }
  const found = await userEventsPage(ctx.db, projectId, userId, filter, page.limit, cursor);
  return {
    data: found.data,
    hasMore: found.hasMore,
    nextCursor: found.hasMore ? (found.last?.eventId ?? null) : null,
  };
}

/** The user ids of a project that carry a (hashed) email or phone. */
export async function findUsers(ctx: VerbContext, projectId: string, input: SubjectInput) {
  await visibleProject(ctx, projectId);
  const subject = await resolveSubject(input);
  if (!subject) throw new ApiError("invalid_request", "The identifier is empty after normalization.");
  return lookupUsers(ctx.db, projectId, subject);
}
