import { afterAll, beforeAll } from "vitest";
import { describeRouteSecurity } from "../../support/routeSecurity";
import { type Stack, startStack } from "../../support/stack";

// Who may start and read content jobs: no key / bad key / revoked key → 401; below the route's role → 403
// (read_only reads, developer starts); another org's key → 404 on this org's project and jobs; a key
// restricted to another project → 404. Every refusal leaves the org's rows (jobs, audit log, idempotency
// keys) as they were. The allowed start is a storage:false job: generated in memory, so no Workflow keeps
// changing rows after the suite's snapshot.

let stack: Stack;
beforeAll(async () => {
  stack = await startStack({ consumer: "recorder" });
});
afterAll(() => stack?.dispose());

describeRouteSecurity(() => stack, "Content");
