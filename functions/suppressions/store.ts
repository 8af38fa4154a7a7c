import type { Db } from "../../shared/db";
import { newestFirstPage } from "../../shared/db/newestFirstPage";

export type SuppressionType = "user_id" | "email" | "phone";

/** Lifts a suppression: later events for the identifier are stored again. False when there was none. */
export async function liftSuppression(
  db: Db,
  projectId: string,
  type: SuppressionType,
  digest: string,
): Promise<{ createdAt: string; deletionRequestId: string | null } | null> {
  const row = await db
    .deleteFrom("suppressions")
    .where("project_id", "=", projectId)
    .where("identifier_type", "=", type)
    .where("identifier_sha256", "=", digest)
    .returning(["created_at", "deletion_request_id"])
    .executeTakeFirst();
  return row
    ? { createdAt: new Date(row.created_at).toISOString(), deletionRequestId: row.deletion_request_id }
    : null;
}

export interface Suppression {
  object: "suppression";
  identifierType: SuppressionType;
  identifierSha256: string;
  deletionRequestId: string | null;
  createdAt: string;
}

/** A project's active suppressions, newest first, keyset on (created_at, digest). Digests only. */
export async function listSuppressions(
  db: Db,
  projectId: string,
  page: { limit: number; startingAfter?: string | undefined },
): Promise<{ data: Suppression[]; hasMore: boolean }> {
  const query = db
    .selectFrom("suppressions")
    .select(["identifier_type", "identifier_sha256", "deletion_request_id", "created_at"])
    .where("project_id", "=", projectId);
  const { rows, hasMore } = await newestFirstPage(query, {
    table: "suppressions",
    time: "created_at",
    id: "identifier_sha256",
    limit: page.limit,
    // Digests are hex; a cursor sent in upper case names the same row.
    startingAfter: page.startingAfter?.toLowerCase(),
    cursorScope: { project_id: projectId },
  });
  return {
    data: rows.map((r) => ({
      object: "suppression" as const,
      identifierType: r.identifier_type,
      identifierSha256: r.identifier_sha256,
      deletionRequestId: r.deletion_request_id,
      createdAt: new Date(r.created_at).toISOString(),
    })),
    hasMore,
  };
}
