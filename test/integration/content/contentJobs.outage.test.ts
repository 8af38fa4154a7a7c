import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, expect, test } from "vitest";
import { api } from "../../support/api";
import { type ContentJob, contentOrg, jobEnded } from "../../support/content";
import { type FakeProviders, startFakeProviders } from "../../support/fakeProviders";
import { type Stack, startStack, waitFor } from "../../support/stack";

// A database outage longer than a step's retries, in the middle of a content job: the Workflow's steps give
// up, and the fail step, which only needs the database, outlasts the outage (its own, longer schedule) and
// closes the job: failed with a code, its sealed request cleared, never "running" forever. The schedule is
// shrunk (50 ms base) with the outage (6 s), as an hour is against production's 10 s base.

let stack: Stack;
let fakes: FakeProviders;
beforeAll(async () => {
  fakes = await startFakeProviders();
  stack = await startStack({
    consumer: "recorder",
    faultyDatabase: true,
    agentVars: {
      CONTENT_PROVIDER: "openai",
      OPENAI_API_KEY: fakes.openai.key,
      OPENAI_BASE_URL: fakes.urls.openai,
      PROVIDER_TIMEOUT_MS: "1500",
    },
    contentVars: { CONTENT_STEP_RETRIES: "2", CONTENT_RETRY_DELAY_MS: "50", DATABASE_TIMEOUT_MS: "1000" },
  });
});
afterAll(async () => {
  stack?.proxy?.setMode("pass");
  await stack?.dispose();
  await fakes?.close();
});

test("the database gone for longer than a step's retries: the job still ends failed, its request cleared", async () => {
  const o = await contentOrg(stack, (s) => api(stack, s));
  fakes.openai.reset();
  fakes.openai.failNext(1, { kind: "hang" });
  const started = await api(stack, o.tenant.secret).post<unknown, ContentJob>(
    `/v1/projects/${o.projectId}/content-jobs`,
    { kind: "copy", brief: `Launch plan ${randomUUID()}` },
  );
  expect(started.status, started.text).toBe(202);
  // The provider hangs on the first call; the database goes while the job waits on it.
  await waitFor(async () => (fakes.openai.calls.length > 0 ? true : undefined));
  stack.proxy?.setMode("down");
  await new Promise((resolve) => setTimeout(resolve, 6_000));
  stack.proxy?.setMode("pass");

  const row = await jobEnded(stack.db, started.body.id, 40_000);
  expect(row.status).toBe("failed");
  expect(row.error_code).toMatch(/^[a-z_]+$/);
  expect(row.request_ciphertext).toBeNull();
}, 60_000);
