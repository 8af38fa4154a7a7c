import { expect } from "vitest";
import { withTenant } from "../../../shared/db";
import { api, type Method } from "../../support/api";
import { addApiKey } from "../../support/apiTenant";
import type { Stack } from "../../support/stack";
import type { TestTenant } from "../../support/tenant";

// Shared by the data-subject request tests: an API key in a tenant made by createTenant (so events can be
// ingested for its project), JSON calls, and a snapshot of every table that could hold a user's data.

export async function ownerKey(
  stack: Stack,
  t: TestTenant,
  role: "owner" | "admin" | "developer" | "read_only" = "owner",
  projectId?: string,
) {
  return (await addApiKey(stack.db, t.orgId, role, projectId)).secret;
}

/** A call through the typed client: every answer is checked against its route's schema first. */
export async function call(
  stack: Stack,
  secret: string,
  method: Method,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
  // biome-ignore lint/suspicious/noExplicitAny: bodies are asserted field by field with toMatchObject/toEqual
): Promise<{ status: number; body: any; headers: Headers }> {
  const answer = await api(stack, secret).send(method, path, body, { headers });
  return {
    status: answer.status,
    body: answer.text ? JSON.parse(answer.text) : null,
    headers: answer.headers,
  };
}

/** Everything stored for a project that is per user, plus the aggregates (which must not move). */
export async function snapshot(stack: Stack, t: TestTenant, userId: string) {
  const events = await stack.db
    .selectFrom("sdk_events")
    .select(["event_id", "user_id", "email_sha256"])
    .where("project_id", "=", t.projectId)
    .execute();
  const users = await stack.db
    .selectFrom("sdk_users")
    .select(["user_id"])
    .where("project_id", "=", t.projectId)
    .execute();
  const counts = await stack.db
    .selectFrom("event_daily_counts")
    .select(["day", "event_name", "country", "count"])
    .where("project_id", "=", t.projectId)
    .orderBy("day")
    .orderBy("event_name")
    .orderBy("country")
    .execute();
  return {
    userEvents: events.filter((e) => e.user_id === userId).length,
    otherEvents: events.filter((e) => e.user_id !== userId).length,
    user: users.some((u) => u.user_id === userId),
    otherUsers: users.filter((u) => u.user_id !== userId).length,
    counts: counts.map((c) => ({ ...c, count: Number(c.count) })),
  };
}

export async function auditActions(stack: Stack, t: TestTenant, resourceId: string): Promise<string[]> {
  const rows = await withTenant(stack.db, t.orgId, (tx) =>
    tx
      .selectFrom("audit_log")
      .select(["action"])
      .where("resource_id", "=", resourceId)
      .orderBy("occurred_at")
      .orderBy("action")
      .execute(),
  );
  return rows.map((r) => r.action);
}

export function expectNoPlaintext(haystack: string, needles: string[]) {
  for (const needle of needles) expect(haystack.includes(needle), `found ${needle}`).toBe(false);
}

/**
 * One Cron run at `now`; fails if one of the data-subject jobs failed. The run's overall outcome also
 * depends on the other jobs (archive, relays), which have their own tests.
 */
export async function runCron(stack: Stack, now: Date): Promise<void> {
  const mark = stack.logs.length;
  await stack.cron(now);
  const mine = stack.logs.slice(mark).filter((l) => /"job":"dsar-/.test(l));
  expect(mine.filter((l) => l.includes("cron job failed"))).toEqual([]);
  expect(mine.filter((l) => l.includes("cron job done")).length).toBe(2);
}
