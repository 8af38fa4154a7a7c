import { afterAll, beforeAll, expect, test } from "vitest";
import { type Stack, startStack } from "../support/stack";

// The Cron Worker's wiring: a scheduled run in workerd, as the maintenance role, with the injected clock.
// The jobs themselves have their own tests.

let stack: Stack;
beforeAll(async () => {
  stack = await startStack({ consumer: "recorder" });
});
afterAll(() => stack?.dispose());

test("a scheduled run completes and logs each job with its counts", async () => {
  const result = await stack.cron(new Date("2030-01-01T00:00:00Z"));
  expect(result.outcome).toBe("ok");
});

test("the maintenance role cannot write to tenant tables it was not granted", async () => {
  const rows = await stack.db
    .selectFrom("information_schema.role_table_grants" as never)
    .select(["table_name" as never, "privilege_type" as never])
    .where("grantee" as never, "=", "layers_maintenance" as never)
    .execute();
  const writes = (rows as { table_name: string; privilege_type: string }[]).filter(
    (r) => r.table_name === "organizations" && r.privilege_type !== "SELECT",
  );
  expect(writes).toEqual([]);
});
