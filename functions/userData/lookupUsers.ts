import type { Db } from "../../shared/db";

export const MAX_LOOKUP_RESULTS = 100;

/**
 * The user ids of a project that carry a hashed email or phone: in their current state (sdk_users) or on
 * any stored event (a user whose address changed still matches the old one). Digests in, ids out.
 */
export async function lookupUsers(
  db: Db,
  projectId: string,
  hashes: { emailSha256: string | null; phoneSha256: string | null },
): Promise<{ userIds: string[]; hasMore: boolean }> {
  const found = new Set<string>();
  for (const [column, value] of [
    ["email_sha256", hashes.emailSha256],
    ["phone_sha256", hashes.phoneSha256],
  ] as const) {
    if (!value) continue;
    const users = await db
      .selectFrom("sdk_users")
      .select("user_id")
      .where("project_id", "=", projectId)
      .where(column, "=", value)
      .orderBy("user_id")
      .limit(MAX_LOOKUP_RESULTS + 1)
      .execute();
    const events = await db
      .selectFrom("sdk_events")
      .select("user_id")
      .distinct()
      .where("project_id", "=", projectId)
      .where(column, "=", value)
      .where("user_id", "is not", null)
      .orderBy("user_id")
      .limit(MAX_LOOKUP_RESULTS + 1)
      .execute();
    for (const r of [...users, ...events]) if (r.user_id) found.add(r.user_id);
  }
  const sorted = [...found].sort();
  return { userIds: sorted.slice(0, MAX_LOOKUP_RESULTS), hasMore: sorted.length > MAX_LOOKUP_RESULTS };
}
