import { afterAll, beforeAll, expect, test } from "vitest";
import { newId } from "../../../shared/ids";
import { type Stack, startStack } from "../../support/stack";
import { createTenant } from "../../support/tenant";
import { runCron } from "./helpers";

// Retention of deletion receipts: kept 730 days after the request finished, then purged by the Cron run
// (job dsar-receipt-purge). Open requests are never purged, however old.

let stack: Stack;
beforeAll(async () => {
  stack = await startStack({ consumer: "recorder" });
});
afterAll(() => stack?.dispose());

const DAY = 86_400_000;

test("a receipt is kept exactly 730 days after it finished and purged a millisecond later", async () => {
  const t = await createTenant(stack.db);
  const now = new Date("2031-06-15T03:00:00.000Z");
  const cutoff = now.getTime() - 730 * DAY;
  const receipt = (label: string, status: "completed" | "failed" | "pending", finishedAt: number | null) => ({
    id: newId("delreq"),
    org_id: t.orgId,
    project_id: t.projectId,
    user_id: status === "pending" ? "still-open" : null,
    user_id_sha256: "a".repeat(64),
    email_sha256: null,
    phone_sha256: null,
    subject_sha256: Buffer.from(label).toString("hex").padEnd(64, "0"),
    suppress: false,
    status,
    requested_at: new Date((finishedAt ?? cutoff) - DAY),
    started_at: finishedAt === null ? null : new Date(finishedAt - 1000),
    finished_at: finishedAt === null ? null : new Date(finishedAt),
    requested_by: "key_test",
  });
  const rows = {
    older: receipt("older", "completed", cutoff - 1),
    olderFailed: receipt("failed", "failed", cutoff - 5 * DAY),
    boundary: receipt("boundary", "completed", cutoff),
    younger: receipt("younger", "completed", cutoff + 1),
    open: receipt("open", "pending", null),
  };
  rows.open.requested_at = new Date(cutoff - 400 * DAY);
  await stack.db.insertInto("deletion_requests").values(Object.values(rows)).execute();

  await runCron(stack, now);
  const left = await stack.db
    .selectFrom("deletion_requests")
    .select("id")
    .where("project_id", "=", t.projectId)
    .execute();
  // The open request was executed by the same run (it is old enough), so it is completed now, not purged.
  expect(left.map((r) => r.id).sort()).toEqual([rows.boundary.id, rows.younger.id, rows.open.id].sort());
  expect(stack.logs.some((l) => l.includes("dsar-receipt-purge") && l.includes("deletion_receipts"))).toBe(
    true,
  );
});
