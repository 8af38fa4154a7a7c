import { afterAll, beforeAll } from "vitest";
import { describeRouteSecurity } from "../../support/routeSecurity";
import { type Stack, startStack } from "../../support/stack";

// /v1/webhook-endpoints and /v1/webhook-event-types through the shared route suite: 401 for every bad key,
// 403 below the declared role and for project-restricted keys (org-wide routes), 404 for another org's
// endpoints and messages, nothing changed by any refusal, and the declared role succeeds. Plain http to
// localhost is allowed here so the endpoints can point at a local address where nothing listens.

let stack: Stack;
beforeAll(async () => {
  stack = await startStack({ consumer: "recorder", apiVars: { WEBHOOK_ALLOW_LOCAL_HTTP: "true" } });
});
afterAll(() => stack?.dispose());

describeRouteSecurity(() => stack, "Webhooks");
