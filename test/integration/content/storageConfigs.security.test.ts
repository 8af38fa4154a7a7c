import { afterAll, beforeAll } from "vitest";
import { describeRouteSecurity } from "../../support/routeSecurity";
import { type Stack, startStack } from "../../support/stack";

// Who may touch storage configs: no key / bad key / revoked key → 401; below the route's role → 403
// (developer reads; admin creates, deletes and checks); a key restricted to one project → 403 (configs
// are org-wide); another org's key → 404 on this org's configs, and its list never shows them. Every
// refusal leaves the org's rows (audit log and idempotency keys included) as they were.

let stack: Stack;
beforeAll(async () => {
  stack = await startStack({ consumer: "recorder" });
});
afterAll(() => stack?.dispose());

describeRouteSecurity(() => stack, "Storage configs");
