import path from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { unstable_getMiniflareWorkerOptions } from "wrangler";
import { ROOT } from "../../scripts/local/bundle";
import { addApiKey, bearer } from "../support/apiTenant";
import { type Stack, startStack } from "../support/stack";
import { createTenant, type TestTenant } from "../support/tenant";

// Ingest caches SDK key lookups per isolate (SDK_KEY_CACHE_TTL_SECONDS), archived flag included. The README
// promises that a revoked key, or a key of a project just archived, is refused within 5 s. These tests run
// the ingest Worker with the cache on, at the lifetime wrangler.toml deploys, and time the refusal.

const PROMISED_SECONDS = 5;
/** Time for a request to travel and for the poll to notice, on a busy machine. */
const SLACK_MS = 2_000;

const deployedTtl = (() => {
  const { workerOptions } = unstable_getMiniflareWorkerOptions(path.join(ROOT, "wrangler.toml"));
  const bindings = (workerOptions.bindings ?? {}) as Record<string, unknown>;
  return String(bindings.SDK_KEY_CACHE_TTL_SECONDS);
})();

let stack: Stack;
beforeAll(async () => {
  stack = await startStack({ consumer: "recorder", ingestVars: { SDK_KEY_CACHE_TTL_SECONDS: deployedTtl } });
});
afterAll(() => stack?.dispose());

const send = (tenant: TestTenant, i: number) =>
  stack.ingest({ eventId: `cache-${i}-${crypto.randomUUID()}`, name: "open" }, { key: tenant.sdkKey });

/**
 * Sends an event every 100 ms until the answer is `status`; returns how long after `since` that was, or
 * fails once the promise (plus slack) has passed.
 */
async function refusedAfter(tenant: TestTenant, status: number, since: number): Promise<number> {
  for (let i = 0; ; i++) {
    const response = await send(tenant, i);
    await response.arrayBuffer();
    if (response.status === status) return Date.now() - since;
    expect(response.status).toBe(202);
    if (Date.now() - since > PROMISED_SECONDS * 1000 + SLACK_MS) {
      throw new Error(`still accepted ${Date.now() - since} ms later; promised ${PROMISED_SECONDS} s`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

describe("ingest key cache: revocation and archive take effect within the promised bound", () => {
  test("wrangler.toml deploys a cache lifetime within the promise", () => {
    expect(Number(deployedTtl)).toBeGreaterThan(0);
    expect(Number(deployedTtl)).toBeLessThanOrEqual(PROMISED_SECONDS);
  });

  test("a revoked SDK key is refused within 5 s (and the cache was really serving it)", async () => {
    const tenant = await createTenant(stack.db);
    const admin = await addApiKey(stack.db, tenant.orgId, "admin");
    const cachedAt = Date.now();
    expect((await send(tenant, 0)).status).toBe(202);

    const revoked = await stack.api(`/v1/projects/${tenant.projectId}/sdk-keys/${tenant.sdkKeyId}/revoke`, {
      method: "POST",
      headers: bearer(admin.secret),
    });
    expect(revoked.status).toBe(200);
    // Not vacuous: right after the revocation the warm isolate still answers from its cache.
    const stale = await send(tenant, 1);
    if (Date.now() - cachedAt < Number(deployedTtl) * 1000 - 500) expect(stale.status).toBe(202);

    const elapsed = await refusedAfter(tenant, 401, cachedAt);
    expect(elapsed).toBeLessThanOrEqual(PROMISED_SECONDS * 1000 + SLACK_MS);
  });

  test("a key of an archived project is refused within 5 s; unarchived, accepted again within 5 s", async () => {
    const tenant = await createTenant(stack.db);
    const admin = await addApiKey(stack.db, tenant.orgId, "admin");
    const cachedAt = Date.now();
    expect((await send(tenant, 0)).status).toBe(202);

    const archived = await stack.api(`/v1/projects/${tenant.projectId}/archive`, {
      method: "POST",
      headers: bearer(admin.secret),
    });
    expect(archived.status).toBe(200);
    const refused = await refusedAfter(tenant, 403, cachedAt);
    expect(refused).toBeLessThanOrEqual(PROMISED_SECONDS * 1000 + SLACK_MS);
    const last = await send(tenant, 99);
    expect(last.status).toBe(403);
    expect(((await last.json()) as { error: { code: string } }).error.code).toBe("project_archived");

    const unarchived = await stack.api(`/v1/projects/${tenant.projectId}/unarchive`, {
      method: "POST",
      headers: bearer(admin.secret),
    });
    expect(unarchived.status).toBe(200);
    const unarchivedAt = Date.now();
    for (;;) {
      const response = await send(tenant, 100);
      await response.arrayBuffer();
      if (response.status === 202) break;
      expect(response.status).toBe(403);
      expect(Date.now() - unarchivedAt).toBeLessThanOrEqual(PROMISED_SECONDS * 1000 + SLACK_MS);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  });
});
