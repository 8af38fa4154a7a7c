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

test("the maintenance role may read and delete organizations (the org-deletion cascade's last step) but never create or change one", async () => {
  const rows = await stack.db
    .selectFrom("information_schema.role_table_grants" as never)
    .select(["table_name" as never, "privilege_type" as never])
    .where("grantee" as never, "=", "layers_maintenance" as never)
    .execute();
  const onOrganizations = (rows as { table_name: string; privilege_type: string }[])
    .filter((r) => r.table_name === "organizations")
    .map((r) => r.privilege_type)
    .sort();
  expect(onOrganizations).toEqual(["DELETE", "SELECT"]);
});
