import { afterAll, beforeAll, expect, test } from "vitest";
import { type Stack, startStack, waitFor } from "../support/stack";
import { createTenant } from "../support/tenant";

let stack: Stack;
beforeAll(async () => {
  stack = await startStack();
});
afterAll(() => stack?.dispose());

test("smoke", async () => {
  const t = await createTenant(stack.db);
  const res = await stack.ingest(
    { events: [{ name: "signup", userId: "u1", email: " A@B.com " }] },
    { key: t.sdkKey },
  );
  console.log(res.status, await res.text());
  const rows = await waitFor(async () => {
    const r = await stack.db
      .selectFrom("sdk_events")
      .selectAll()
      .where("project_id", "=", t.projectId)
      .execute();
    return r.length ? r : undefined;
  });
  console.log(rows, stack.logs);
  expect(rows).toHaveLength(1);
});
