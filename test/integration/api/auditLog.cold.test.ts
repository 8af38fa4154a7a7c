import { sql } from "kysely";
import { afterAll, beforeAll, expect, test } from "vitest";
import { auditObjectKey } from "../../../functions/archive/auditKeys";
import { encodeNdjsonGz } from "../../../functions/archive/ndjson";
import { api } from "../../support/api";
import { type ApiTenant, createApiTenant } from "../../support/apiTenant";
import { type LocalS3, startLocalS3 } from "../../support/s3";
import { type Stack, startStack } from "../../support/stack";

// GET /v1/audit-log serves ranges older than the hot table from the cold archive: same filters, same
// newest-first order, cursors that walk from hot rows into archived ones without a repeat or a gap.

interface Event {
  id: string;
  occurredAt: string;
  action: string;
}
interface List {
  data: Event[];
  hasMore: boolean;
  nextCursor: string | null;
}

let stack: Stack;
let s3: LocalS3;
let tenant: ApiTenant;
/** Every archived id, newest first. */
const coldIds: string[] = [];

beforeAll(async () => {
  s3 = await startLocalS3();
  stack = await startStack({ consumer: "recorder", s3 });
  tenant = await createApiTenant(stack.db);
  // Three hot events of this org.
  for (const name of ["Hot A", "Hot B", "Hot C"]) {
    const created = await api(stack, tenant.secret).post("/v1/projects", { name });
    expect(created.status).toBe(201);
  }
  // Three archived days with two or three rows each, as the archive job leaves them (object + index).
  const days = ["2025-03-01", "2025-03-02", "2025-03-04"];
  for (const [n, day] of days.entries()) {
    const rows = Array.from({ length: n + 2 }, (_, i) => ({
      id: `aud_cold${day.replaceAll("-", "")}x${i}`,
      org_id: tenant.orgId,
      occurred_at: `${day}T0${i}:00:00.00012${i}Z`,
      actor_type: "api_key",
      actor_id: tenant.keyId,
      action: i === 0 ? "member.created" : "project.updated",
      resource_type: "project",
      resource_id: "proj_cold",
      request_id: null,
      changes: {},
    }));
    const key = auditObjectKey(tenant.orgId, day);
    await s3.storage.put(key, await encodeNdjsonGz(rows), "application/x-ndjson");
    await sql`insert into audit_archive_objects (org_id, day, object_key, row_count)
      values (${tenant.orgId}, ${day}::date, ${key}, ${rows.length})`.execute(stack.db);
    coldIds.unshift(...rows.map((r) => r.id).reverse());
  }
});
afterAll(async () => {
  await stack?.dispose();
  await s3?.dispose();
});

async function list(query: Record<string, string>): Promise<List> {
  const answer = await api(stack, tenant.secret).get<List>(`/v1/audit-log?${new URLSearchParams(query)}`);
  expect(answer.status, answer.text).toBe(200);
  return answer.body;
}

async function walk(query: Record<string, string>): Promise<string[]> {
  const ids: string[] = [];
  let cursor: string | null = null;
  for (let pages = 0; pages < 50; pages++) {
    const page: List = await list({ ...query, ...(cursor ? { starting_after: cursor } : {}) });
    ids.push(...page.data.map((e) => e.id));
    if (!page.hasMore) return ids;
    expect(page.nextCursor).not.toBeNull();
    cursor = page.nextCursor;
  }
  throw new Error("too many pages");
}

test("paging walks from the hot table into the archive, newest first, without a repeat or a gap", async () => {
  const hot = await stack.db
    .selectFrom("audit_log")
    .select("id")
    .where("org_id", "=", tenant.orgId)
    .orderBy("occurred_at", "desc")
    .orderBy("id", "desc")
    .execute();
  expect(hot.length).toBeGreaterThanOrEqual(3);
  const expected = [...hot.map((r) => r.id), ...coldIds];
  for (const limit of ["1", "2", "5", "100"])
    expect(await walk({ limit }), `limit ${limit}`).toEqual(expected);
  const first = await list({ limit: String(hot.length + 1) });
  // The page ends on an archived row: its cursor carries the position.
  expect(first.nextCursor).toMatch(/^aud_cold\w+\.[0-9a-z]+$/);
});

test("filters apply to archived rows as to hot ones", async () => {
  const members = await walk({ limit: "2", action: "member.created" });
  expect(members).toEqual(coldIds.filter((id) => id.endsWith("x0")));
  const range = await walk({ limit: "2", from: "2025-03-02T00:00:00Z", to: "2025-03-04T01:00:00Z" });
  expect(range).toEqual([
    "aud_cold20250304x0",
    "aud_cold20250302x2",
    "aud_cold20250302x1",
    "aud_cold20250302x0",
  ]);
});

test("a plain archived id works as a cursor; an unknown id gives an empty page", async () => {
  const after = await list({ limit: "2", starting_after: "aud_cold20250302x1" });
  expect(after.data.map((e) => e.id)).toEqual(["aud_cold20250302x0", "aud_cold20250301x1"]);
  expect((await list({ starting_after: "aud_nowhere" })).data).toEqual([]);
});

test("another org sees none of these archived rows", async () => {
  const other = await createApiTenant(stack.db);
  const answer = await api(stack, other.secret).get<List>("/v1/audit-log?limit=100");
  expect(answer.body.data.map((e) => e.id).filter((id) => id.startsWith("aud_cold"))).toEqual([]);
});

test("past the per-request object budget a page holds only certain rows, and the cursor goes on from there", async () => {
  const sparse = await createApiTenant(stack.db);
  // 40 archived days (more than the 31 objects one request reads); only the oldest day matches the filter.
  for (let d = 0; d < 40; d++) {
    const day = new Date(Date.UTC(2024, 0, 1 + d)).toISOString().slice(0, 10);
    const row = {
      id: `aud_sparse${String(d).padStart(2, "0")}`,
      org_id: sparse.orgId,
      occurred_at: `${day}T12:00:00.000000Z`,
      actor_type: "api_key",
      actor_id: sparse.keyId,
      action: d === 0 ? "member.created" : "project.updated",
      resource_type: "project",
      resource_id: "proj_sparse",
      request_id: null,
      changes: {},
    };
    const key = auditObjectKey(sparse.orgId, day);
    await s3.storage.put(key, await encodeNdjsonGz([row]), "application/x-ndjson");
    await sql`insert into audit_archive_objects (org_id, day, object_key, row_count)
      values (${sparse.orgId}, ${day}::date, ${key}, 1)`.execute(stack.db);
  }
  const as = api(stack, sparse.secret);
  const first = await as.get<List>("/v1/audit-log?action=member.created");
  // The first request read 31 days and found nothing certain: an empty page that says there is more.
  expect(first.body.data.filter((e) => e.id.startsWith("aud_sparse"))).toEqual([]);
  expect(first.body.hasMore).toBe(true);
  const next = await as.get<List>(
    `/v1/audit-log?action=member.created&starting_after=${encodeURIComponent(first.body.nextCursor!)}`,
  );
  expect(next.body.data.map((e) => e.id)).toEqual(["aud_sparse00"]);
  expect(next.body.hasMore).toBe(false);
  // Unfiltered, in pages of 7, every archived row once, newest first.
  const ids: string[] = [];
  let cursor: string | null = null;
  for (let pages = 0; pages < 20; pages++) {
    const query: string = cursor ? `&starting_after=${encodeURIComponent(cursor)}` : "";
    const page = await as.get<List>(`/v1/audit-log?limit=7${query}`);
    ids.push(...page.body.data.map((e) => e.id));
    if (!page.body.hasMore) break;
    cursor = page.body.nextCursor;
  }
  const expected = Array.from({ length: 40 }, (_, d) => `aud_sparse${String(39 - d).padStart(2, "0")}`);
  expect(ids.filter((id) => id.startsWith("aud_sparse"))).toEqual(expected);
});
