import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { purgeOrgDeletionReceipts, RECEIPT_LIFETIME_MS } from "../../../functions/lifecycle/cascade";
import { maintenanceRoleUrl } from "../../../scripts/local/migrate";
import { createNodeDb } from "../../../scripts/local/node-db";
import type { Db } from "../../../shared/db";
import { addApiKey } from "../../support/apiTenant";
import { testDatabaseUrl } from "../../support/database";
import { orgSnapshot } from "../../support/orgSnapshot";
import { type Stack, startStack } from "../../support/stack";
import { createTenant } from "../../support/tenant";
import { call } from "../dsar/helpers";

// DELETE /v1/org: the confirmation, who may ask, the keys refused within the promised bound, the receipt
// and its token, an idempotent retry, and the Cron Worker carrying the deletion out.

/** The README's promise: a cached API or SDK key lives at most this long after its org's deletion. */
const PROMISED_SECONDS = 5;
/** Time for a request to travel and for the poll to notice, on a busy machine. */
const SLACK_MS = 2_000;

let stack: Stack;
let maintenance: Db;
beforeAll(async () => {
  // Both key caches on, at the lifetime wrangler.toml deploys (5 s each).
  stack = await startStack({
    consumer: "recorder",
    ingestVars: { SDK_KEY_CACHE_TTL_SECONDS: String(PROMISED_SECONDS) },
    apiVars: { API_KEY_CACHE_TTL_SECONDS: String(PROMISED_SECONDS) },
  });
  maintenance = createNodeDb(maintenanceRoleUrl(testDatabaseUrl()), 2);
});
afterAll(async () => {
  await maintenance?.destroy();
  await stack?.dispose();
});

async function receipt(id: string, token: string | null) {
  const response = await stack.api(`/v1/org-deletion-receipts/${id}`, {
    headers: token === null ? {} : { Authorization: `Bearer ${token}` },
  });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : null };
}

/** Polls `probe` every 100 ms until it answers `status`; fails once the promise plus slack has passed. */
async function refusedWithin(probe: () => Promise<number>, status: number, since: number): Promise<number> {
  for (;;) {
    const got = await probe();
    if (got === status) return Date.now() - since;
    if (Date.now() - since > PROMISED_SECONDS * 1000 + SLACK_MS) {
      throw new Error(`still answered ${got} ${Date.now() - since} ms later; promised ${PROMISED_SECONDS} s`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

describe("DELETE /v1/org", () => {
  test("refuses a wrong confirmation (400 confirmation_mismatch) and changes nothing", async () => {
    const t = await createTenant(stack.db);
    const owner = await addApiKey(stack.db, t.orgId, "owner");
    const before = await orgSnapshot(stack.db, t.orgId);
    for (const confirm of ["test org", "Test org ", "Other"]) {
      const answer = await call(stack, owner.secret, "DELETE", "/v1/org", { confirm });
      expect(answer.status).toBe(400);
      expect(answer.body.error.code).toBe("confirmation_mismatch");
    }
    const missing = await call(stack, owner.secret, "DELETE", "/v1/org", {});
    expect(missing.status).toBe(400);
    expect(await orgSnapshot(stack.db, t.orgId)).toEqual(before);
  });

  test("only an org-wide owner key may ask (admin 403, restricted owner 403)", async () => {
    const t = await createTenant(stack.db);
    const admin = await addApiKey(stack.db, t.orgId, "admin");
    const restricted = await addApiKey(stack.db, t.orgId, "owner", t.projectId);
    for (const key of [admin, restricted]) {
      const answer = await call(stack, key.secret, "DELETE", "/v1/org", { confirm: "Test org" });
      expect(answer.status).toBe(403);
      expect(answer.body.error.code).toBe("forbidden");
    }
    expect(
      await stack.db.selectFrom("org_deletions").select("id").where("org_id", "=", t.orgId).execute(),
    ).toEqual([]);
  });

  test("every API key and SDK key of the org is refused: changes at once, reads and ingest within 5 s", async () => {
    const t = await createTenant(stack.db);
    const owner = await addApiKey(stack.db, t.orgId, "owner");
    const reader = await addApiKey(stack.db, t.orgId, "read_only");
    const developer = await addApiKey(stack.db, t.orgId, "developer");
    // Warm both caches: the reader's key and the SDK key are served from memory from now on.
    expect((await call(stack, reader.secret, "GET", "/v1/org")).status).toBe(200);
    const ingest = async () => {
      const response = await stack.ingest({ eventId: crypto.randomUUID(), name: "open" }, { key: t.sdkKey });
      await response.arrayBuffer();
      return response.status;
    };
    expect(await ingest()).toBe(202);

    const asked = await call(stack, owner.secret, "DELETE", "/v1/org", { confirm: "Test org" });
    expect(asked.status).toBe(202);
    const since = Date.now();
    // A change looks its key up afresh: refused at once.
    const change = await call(stack, developer.secret, "POST", "/v1/projects", { name: "After" });
    expect(change.status).toBe(401);
    const readRefused = await refusedWithin(
      async () => (await call(stack, reader.secret, "GET", "/v1/org")).status,
      401,
      since,
    );
    const ingestRefused = await refusedWithin(ingest, 401, since);
    expect(readRefused).toBeLessThanOrEqual(PROMISED_SECONDS * 1000 + SLACK_MS);
    expect(ingestRefused).toBeLessThanOrEqual(PROMISED_SECONDS * 1000 + SLACK_MS);
    const keys = await stack.db
      .selectFrom("api_keys")
      .select("revoked_at")
      .where("org_id", "=", t.orgId)
      .execute();
    expect(keys.every((k) => k.revoked_at !== null)).toBe(true);
  });

  test("the receipt: token shown once, readable only with it, same receipt on a concurrent retry", async () => {
    const t = await createTenant(stack.db);
    const owner = await addApiKey(stack.db, t.orgId, "owner");
    const other = await createTenant(stack.db);
    const otherOwner = await addApiKey(stack.db, other.orgId, "owner");

    const [first, second] = await Promise.all([
      call(stack, owner.secret, "DELETE", "/v1/org", { confirm: "Test org" }),
      call(stack, owner.secret, "DELETE", "/v1/org", { confirm: "Test org" }),
    ]);
    // Both got in before the revocation committed, or the second was refused with the key: either way one
    // receipt, and its token in exactly one answer.
    const answers = [first, second].filter((a) => a.status === 202);
    expect(answers.length).toBeGreaterThanOrEqual(1);
    for (const a of [first, second]) expect([202, 401]).toContain(a.status);
    expect(new Set(answers.map((a) => a.body.id)).size).toBe(1);
    const tokens = answers.map((a) => a.body.receiptToken).filter((x) => x !== null);
    expect(tokens).toHaveLength(1);
    const id = answers[0]!.body.id as string;
    const token = tokens[0] as string;
    expect(answers[0]!.body).toMatchObject({
      object: "org_deletion",
      status: "pending",
      receiptUrl: `/v1/org-deletion-receipts/${id}`,
    });

    // The token is stored as SHA-256 only.
    const row = await stack.db
      .selectFrom("org_deletions")
      .selectAll()
      .where("id", "=", id)
      .executeTakeFirstOrThrow();
    expect(JSON.stringify(row)).not.toContain(token);

    // No token, a malformed one, another receipt's, an API key: 404, as an unknown id.
    const otherAsked = await call(stack, otherOwner.secret, "DELETE", "/v1/org", { confirm: "Test org" });
    expect(otherAsked.status).toBe(202);
    for (const wrong of [
      null,
      "odr_short",
      `odr_${"x".repeat(32)}`,
      otherAsked.body.receiptToken,
      owner.secret,
    ]) {
      const answer = await receipt(id, wrong);
      expect(answer.status, String(wrong)).toBe(404);
      expect(answer.body.error.code).toBe("not_found");
    }
    expect((await receipt("odel_unknown", token)).status).toBe(404);
    const read = await receipt(id, token);
    expect(read.status).toBe(200);
    expect(read.body).toMatchObject({ id, status: "pending", receiptToken: null, counts: {} });

    // The Cron Worker (the real one, on its five-minute trigger) carries the deletion out, objects included
    // (bulk deletes from inside workerd).
    for (let i = 0; i < 3; i++) {
      await stack.s3.media.put(
        `media/${t.orgId}/${t.projectId}/c${i}`,
        new Uint8Array([1, 2, 3]),
        "image/png",
      );
    }
    for (let i = 0; i < 5 && (await receipt(id, token)).body.status !== "completed"; i++) {
      await stack.cron(new Date());
    }
    const done = await receipt(id, token);
    expect(done.body.status).toBe("completed");
    expect(done.body.counts).toMatchObject({
      organizations: 1,
      projects: 1,
      sdk_keys: 1,
      "objects:media": 3,
    });
    expect((await stack.s3.media.list(`media/${t.orgId}/`)).keys).toEqual([]);
    expect(done.body.counts.api_keys).toBeGreaterThanOrEqual(1);
    expect(Date.parse(done.body.expiresAt) - Date.parse(done.body.finishedAt)).toBe(RECEIPT_LIFETIME_MS);
    expect(
      await stack.db.selectFrom("organizations").select("id").where("id", "=", t.orgId).execute(),
    ).toEqual([]);
    const closed = await stack.db
      .selectFrom("org_deletions")
      .selectAll()
      .where("id", "=", id)
      .executeTakeFirstOrThrow();
    expect(closed.org_id).toBeNull();
    expect(JSON.stringify(closed)).not.toContain(t.orgId);

    // Two years after completion the receipt itself goes.
    await purgeOrgDeletionReceipts(maintenance, new Date(Date.parse(done.body.expiresAt) - 1000));
    expect((await receipt(id, token)).status).toBe(200);
    await purgeOrgDeletionReceipts(maintenance, new Date(Date.parse(done.body.expiresAt) + 1000));
    expect((await receipt(id, token)).status).toBe(404);
  });

  test("an Idempotency-Key replay of the answer never carries the token", async () => {
    const t = await createTenant(stack.db);
    const owner = await addApiKey(stack.db, t.orgId, "owner");
    const asked = await call(
      stack,
      owner.secret,
      "DELETE",
      "/v1/org",
      { confirm: "Test org" },
      { "Idempotency-Key": "del-org-1" },
    );
    expect(asked.status).toBe(202);
    expect(asked.body.receiptToken).toMatch(/^odr_/);
    const stored = await stack.db
      .selectFrom("idempotency_keys")
      .select("response_body")
      .where("org_id", "=", t.orgId)
      .executeTakeFirstOrThrow();
    expect(JSON.stringify(stored.response_body)).not.toContain(asked.body.receiptToken);
    expect((stored.response_body as { receiptToken: unknown }).receiptToken).toBeNull();
  });
});

test("receipt reads take no API key but are rate limited per client address: guessing gets 429, not a query each", async () => {
  const limited = await startStack({ consumer: "recorder", apiVars: { API_RATE_LIMIT_PER_MINUTE: "3" } });
  try {
    // A fixed clock: 3 a minute is one read earned every 20 s.
    const read = (ip: string, n: number) =>
      limited.api(`/v1/org-deletion-receipts/odel_guess${n}`, {
        headers: {
          Authorization: `Bearer odr_${"x".repeat(28)}${String(n).padStart(4, "0")}`,
          "CF-Connecting-IP": ip,
          "X-Layers-Test-Now": "2026-11-26T12:00:10.000Z",
        },
      });
    for (let n = 0; n < 3; n++) expect((await read("203.0.113.7", n)).status).toBe(404);
    const refused = await read("203.0.113.7", 3);
    expect(refused.status).toBe(429);
    expect(((await refused.json()) as { error: { code: string } }).error.code).toBe("rate_limited");
    expect(refused.headers.get("Retry-After")).toBe("20");
    // Another address has its own allowance.
    expect((await read("198.51.100.9", 4)).status).toBe(404);
  } finally {
    await limited.dispose();
  }
});
