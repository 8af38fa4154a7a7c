import { afterAll, beforeAll } from "vitest";
import { describeRouteSecurity } from "../../support/routeSecurity";
import { type Stack, startStack } from "../../support/stack";

// Who may touch layers, generated content and the creative library: no key / bad key / revoked key → 401;
// below the route's role → 403 (read_only reads; developer deletes containers and edits the library; admin
// switches layers); a key restricted to another project → 404 on this project's routes, 403 on the
// org-wide library; another org's key → 404 on this org's ids. Every refusal leaves the org's rows as they
// were (audit log and idempotency keys included).

let stack: Stack;
beforeAll(async () => {
  stack = await startStack({ consumer: "recorder" });
});
afterAll(() => stack?.dispose());

describeRouteSecurity(() => stack, "Layers");
describeRouteSecurity(() => stack, "Content containers");
describeRouteSecurity(() => stack, "Ads content");
