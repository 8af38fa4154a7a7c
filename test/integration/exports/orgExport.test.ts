import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { gunzipSync } from "node:zlib";
import { sql } from "kysely";
import { afterAll, beforeAll, describe, expect, inject, test } from "vitest";
import { executeDeletions } from "../../../functions/deletionRequests/executeDeletions";
import { EXPORT_RESOURCES } from "../../../functions/exports/resources";
import {
  advanceExport,
  DEFAULT_EXPORT_LIMITS,
  type ExportDeps,
  exportPrefix,
} from "../../../functions/exports/runExport";
import { runDeletions } from "../../../functions/lifecycle/cascade";
import type { ObjectStore } from "../../../functions/storage/objectStore";
import { maintenanceRoleUrl, roleUrl } from "../../../scripts/local/migrate";
import { createNodeDb } from "../../../scripts/local/node-db";
import type { Db } from "../../../shared/db";
import { api } from "../../support/api";
import { addApiKey, createApiTenant } from "../../support/apiTenant";
import { testDatabaseUrl } from "../../support/database";
import { ARCHIVE_BUCKET, type LocalS3, startLocalS3 } from "../../support/s3";
import { type Stack, startStack } from "../../support/stack";
import { type FilledOrg, fillOrg } from "./fixture";

// Org export end to end: the API opens a job, the Cron Worker's exporter (its own role, in workerd) runs it
// in bounded steps (two rows per part here, so every resource spans several parts and runs), and the
// archive is read back with GNU tar through the signed URL the API hands out. Only the every-minute
// trigger is run: the five-minute one would archive other test files' audit rows into this stack's bucket.

const run = promisify(execFile);

interface Export {
  id: string;
  status: string;
  counts: Record<string, number>;
  projects: string[] | null;
  includeEvents: boolean;
  sizeBytes: number | null;
  sha256: string | null;
  errorCode: string | null;
  expiresAt: string | null;
  download: { url: string; expiresAt: string } | null;
}

interface Manifest {
  schemaVersion: number;
  orgId: string;
  files: { name: string; resource: string; rows: number; bytes: number; sha256: string }[];
  media: { name: string; containerId: string; bytes: number; sha256: string }[];
  skipped: { resource: string; reason: string }[];
}

let stack: Stack;
let s3: LocalS3;
let exporterDb: Db;
let org: FilledOrg;
let clock = Date.now();

beforeAll(async () => {
  s3 = await startLocalS3();
  stack = await startStack({
    consumer: "recorder",
    s3,
    exporter: true,
    cronVars: { ARCHIVE_BUCKET, EXPORT_PAGE_ROWS: "2", EXPORT_STEPS_PER_RUN: "7" },
    // The test polls each export's status once per Cron run: far above the per-key rate limit.
    apiVars: { WEBHOOK_ALLOW_LOCAL_HTTP: "true", API_RATE_LIMIT_PER_MINUTE: "100000" },
    apiRateLimit: 100_000,
  });
  exporterDb = createNodeDb(roleUrl(testDatabaseUrl(), "layers_exporter"));
  org = await fillOrg(stack, s3);
});
afterAll(async () => {
  await exporterDb?.destroy();
  await stack?.dispose();
  await s3?.dispose();
});

/** Runs the every-minute Cron trigger (a minute later each time) until the export is finished. */
async function runToEnd(as: ReturnType<typeof api>, id: string): Promise<{ answer: Export; runs: number }> {
  for (let runs = 1; runs <= 200; runs++) {
    clock += 61_000;
    const result = await stack.cron(new Date(clock), "* * * * *");
    // Only this export's failures count: a database shared with other runs may hold exports whose parts
    // were written to another S3 server (they fail, as they should, and are not this test's business).
    const failures = stack.logs.filter((line) => line.includes("cron job failed") && line.includes(id));
    expect(failures).toEqual([]);
    expect(["ok", "exception"]).toContain(result.outcome);
    const answer = await as.get<Export>(`/v1/org/exports/${id}`);
    expect(answer.status, answer.text).toBe(200);
    if (!["queued", "running"].includes(answer.body.status)) return { answer: answer.body, runs };
  }
  throw new Error(`export ${id} did not finish in 200 runs`);
}

/** Downloads the archive through its signed URL and unpacks it with GNU tar. */
async function unpack(url: string): Promise<{ dir: string; bytes: Uint8Array; names: string[] }> {
  const response = await fetch(url);
  expect(response.status).toBe(200);
  const bytes = new Uint8Array(await response.arrayBuffer());
  const dir = await mkdtemp(path.join(tmpdir(), "layers-export-"));
  await writeFile(path.join(dir, "archive.tar"), bytes);
  const listed = await run("tar", ["-tf", "archive.tar"], { cwd: dir });
  await run("tar", ["-xf", "archive.tar"], { cwd: dir });
  return { dir, bytes, names: listed.stdout.split("\n").filter(Boolean) };
}

async function ndjson(dir: string, name: string): Promise<Record<string, unknown>[]> {
  const text = gunzipSync(await readFile(path.join(dir, name))).toString("utf8");
  return text
    .split("\n")
    .filter(Boolean)
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

async function startExport(
  secret: string,
  body: Record<string, unknown>,
  idempotencyKey?: string,
): Promise<Export> {
  const answer = await api(stack, secret).post<unknown, Export>(
    "/v1/org/exports",
    body,
    idempotencyKey ? { idempotencyKey } : {},
  );
  expect(answer.status, answer.text).toBe(202);
  return answer.body;
}

async function dbCount(table: string, orgColumn: string, orgId: string): Promise<number> {
  const { rows } = await sql<{ n: string }>`
    select count(*) as n from ${sql.table(table)} where ${sql.ref(orgColumn)} = ${orgId}`.execute(stack.db);
  return Number(rows[0]?.n ?? 0);
}

describe("a full export with events", () => {
  let done: Export;
  let unpacked: { dir: string; bytes: Uint8Array; names: string[] };
  let manifest: Manifest;

  beforeAll(async () => {
    const created = await startExport(org.owner.secret, { includeEvents: true });
    expect(created.status).toBe("queued");
    const { answer, runs } = await runToEnd(org.as, created.id);
    // Bounded steps: with 2 rows per part and 7 steps per run, one run cannot do it all.
    expect(runs).toBeGreaterThan(2);
    done = answer;
    expect(done.status, JSON.stringify(done)).toBe("succeeded");
    expect(done.download).not.toBeNull();
    unpacked = await unpack(done.download!.url);
    manifest = JSON.parse(await readFile(path.join(unpacked.dir, "manifest.json"), "utf8")) as Manifest;
  });
  afterAll(async () => {
    if (unpacked) await rm(unpacked.dir, { recursive: true, force: true });
  });

  test("the archive is a tar of one gzip'd NDJSON file per resource, the media, and a manifest", () => {
    const expected = [
      ...EXPORT_RESOURCES.map((r) => `${r.name}.ndjson.gz`),
      "audit_log_archived.ndjson.gz",
      `media/${org.containerId}`,
      "manifest.json",
    ];
    expect([...unpacked.names].sort()).toEqual(expected.sort());
    expect(manifest.schemaVersion).toBe(1);
    expect(manifest.orgId).toBe(org.orgId);
    expect(manifest.skipped).toEqual([]);
    expect(done.sizeBytes).toBe(unpacked.bytes.length);
    expect(done.sha256).toBe(createHash("sha256").update(unpacked.bytes).digest("hex"));
  });

  test("every file's SHA-256 and row count in the manifest match the file", async () => {
    for (const file of manifest.files) {
      const bytes = await readFile(path.join(unpacked.dir, file.name));
      expect(file.bytes, file.name).toBe(bytes.length);
      expect(file.sha256, file.name).toBe(createHash("sha256").update(bytes).digest("hex"));
      expect((await ndjson(unpacked.dir, file.name)).length, file.name).toBe(file.rows);
    }
    const media = manifest.media[0]!;
    expect(await readFile(path.join(unpacked.dir, media.name))).toEqual(Buffer.from(org.mediaBytes));
  });

  test("every tenant table's rows are in the archive: counts per resource match the database", async () => {
    for (const resource of EXPORT_RESOURCES) {
      const rows = await ndjson(unpacked.dir, `${resource.name}.ndjson.gz`);
      const inDb = await dbCount(resource.table, resource.orgColumn, org.orgId);
      expect(inDb, `${resource.table} has rows for this test`).toBeGreaterThan(0);
      // The audit log and request log keep growing while the test polls; the rest is fixed.
      if (["audit_log", "request_logs", "webhook_attempts"].includes(resource.table)) {
        expect(rows.length, resource.name).toBeGreaterThan(0);
        expect(rows.length, resource.name).toBeLessThanOrEqual(inDb);
      } else {
        expect(rows.length, resource.name).toBe(inDb);
      }
      // No row repeated across parts (keyset pages, idempotent steps).
      const keys = rows.map((r) => JSON.stringify(resource.key.map((k) => r[k])));
      expect(new Set(keys).size, resource.name).toBe(rows.length);
      for (const row of rows) expect(row[resource.orgColumn], resource.name).toBe(org.orgId);
    }
    const cold = await ndjson(unpacked.dir, "audit_log_archived.ndjson.gz");
    expect(cold.map((r) => r.id).sort()).toEqual([...org.coldAuditIds].sort());
    expect(done.counts.events).toBe(await dbCount("sdk_events", "org_id", org.orgId));
  });

  test("no secret is in the archive: no issued key or token, no hash, no ciphertext", async () => {
    let text = "";
    for (const name of unpacked.names) {
      const bytes = await readFile(path.join(unpacked.dir, name));
      text += name.endsWith(".gz") ? gunzipSync(bytes).toString("utf8") : bytes.toString("utf8");
    }
    const issued = (await readFile(inject("issuedSecretsFile"), "utf8"))
      .split("\n")
      .filter(Boolean)
      .map((line) => JSON.parse(line) as string);
    expect(issued.length).toBeGreaterThan(3);
    for (const secret of [...issued, ...org.storedSecrets]) {
      expect(text.includes(secret), `archive holds ${secret.slice(0, 10)}…`).toBe(false);
    }
    const keys = await ndjson(unpacked.dir, "api_keys.ndjson.gz");
    expect(Object.keys(keys[0]!)).not.toContain("key_sha256");
    const configs = await ndjson(unpacked.dir, "storage_configs.ndjson.gz");
    expect(Object.keys(configs[0]!)).not.toContain("secret_ciphertext");
  });

  test("the export is audited (created by the key, completed by the system) and its parts are gone", async () => {
    const { rows } = await sql<{ action: string; actor_type: string }>`
      select action, actor_type from audit_log where org_id = ${org.orgId} and resource_id = ${done.id}
      order by occurred_at`.execute(stack.db);
    expect(rows).toEqual([
      { action: "org_export.created", actor_type: "api_key" },
      { action: "org_export.completed", actor_type: "system" },
    ]);
    const left = await s3.exports.list(`exports/${org.orgId}/${done.id}/`);
    expect(left.keys).toEqual([`exports/${org.orgId}/${done.id}/layers-export-${done.id}.tar`]);
  });

  test("the download URL lives 24 h and is not stored; it is withdrawn when the archive expires", async () => {
    const url = new URL(done.download!.url);
    expect(url.searchParams.get("X-Amz-Expires")).toBe("86400");
    const stored = await sql<{
      t: string;
    }>`select t::text as t from org_exports t where id = ${done.id}`.execute(stack.db);
    expect(stored.rows[0]!.t).not.toContain(url.searchParams.get("X-Amz-Signature")!);
    // An hour before the archive expires, a fresh URL lives an hour, not 24.
    const expiresAt = Date.parse(done.expiresAt!);
    expect(expiresAt - Date.parse(done.download!.expiresAt)).toBeLessThanOrEqual(7 * 86_400_000);
    // A key of its own for the calls with a test clock days ahead (its rate-limit state moves with it).
    const traveller = api(stack, (await addApiKey(stack.db, org.orgId, "admin")).secret);
    const late = await traveller.get<Export>(`/v1/org/exports/${done.id}`, {
      now: new Date(expiresAt - 3_600_000),
    });
    expect(new URL(late.body.download!.url).searchParams.get("X-Amz-Expires")).toBe("3600");
    const after = await traveller.get<Export>(`/v1/org/exports/${done.id}`, {
      now: new Date(expiresAt + 1000),
    });
    expect(after.body.download).toBeNull();
    // The Cron job deletes the object after 7 days and marks the export expired.
    expect(["ok", "exception"]).toContain(
      (await stack.cron(new Date(expiresAt + 60_000), "* * * * *")).outcome,
    );
    const expired = await org.as.get<Export>(`/v1/org/exports/${done.id}`);
    expect(expired.body.status).toBe("expired");
    expect(expired.body.download).toBeNull();
    expect((await s3.exports.list(`exports/${org.orgId}/${done.id}/`)).keys).toEqual([]);
  });
});

describe("options", () => {
  test("without includeEvents, end users' data is left out and the manifest says why", async () => {
    const created = await startExport(org.owner.secret, { includeEvents: false });
    const { answer } = await runToEnd(org.as, created.id);
    expect(answer.status).toBe("succeeded");
    const unpacked = await unpack(answer.download!.url);
    try {
      const manifest = JSON.parse(
        await readFile(path.join(unpacked.dir, "manifest.json"), "utf8"),
      ) as Manifest;
      const eventNames = EXPORT_RESOURCES.filter((r) => r.events).map((r) => r.name);
      expect(eventNames).toContain("events");
      for (const name of eventNames) {
        expect(unpacked.names).not.toContain(`${name}.ndjson.gz`);
        expect(manifest.skipped).toContainEqual({ resource: name, reason: "includeEvents was false" });
      }
      expect(unpacked.names).toContain("projects.ndjson.gz");
    } finally {
      await rm(unpacked.dir, { recursive: true, force: true });
    }
  });

  test("a projects filter keeps those projects' rows and the org's own", async () => {
    const created = await startExport(org.owner.secret, {
      projects: [org.otherProjectId],
      includeEvents: true,
    });
    expect(created.projects).toEqual([org.otherProjectId]);
    const { answer } = await runToEnd(org.as, created.id);
    const unpacked = await unpack(answer.download!.url);
    try {
      const projects = await ndjson(unpacked.dir, "projects.ndjson.gz");
      expect(projects.map((p) => p.id)).toEqual([org.otherProjectId]);
      const events = await ndjson(unpacked.dir, "events.ndjson.gz");
      expect(events.length).toBeGreaterThan(0);
      for (const e of events) expect(e.project_id).toBe(org.otherProjectId);
      // The first project's container and its media are not in it; org-wide resources are.
      expect(await ndjson(unpacked.dir, "content_containers.ndjson.gz")).toEqual([]);
      expect(unpacked.names.some((n) => n.startsWith("media/"))).toBe(false);
      expect((await ndjson(unpacked.dir, "members.ndjson.gz")).length).toBeGreaterThan(0);
    } finally {
      await rm(unpacked.dir, { recursive: true, force: true });
    }
  });

  test("bad requests: unknown or other org's project → 404, unknown field → 400, one export at a time → 409", async () => {
    const outsider = await createApiTenant(stack.db);
    const [foreignProject] = (
      await api(stack, outsider.secret).get<{ data: { id: string }[] }>("/v1/projects")
    ).body.data;
    const tenantProjects = [foreignProject?.id ?? "proj_doesnotexist000000000", "proj_nope"];
    for (const id of tenantProjects) {
      const answer = await org.as.post<unknown, Export>("/v1/org/exports", { projects: [id] });
      expect(answer.status, answer.text).toBe(404);
      expect(answer.error.code).toBe("not_found");
    }
    const unknown = await org.as.post<unknown, Export>("/v1/org/exports", { everything: true });
    expect(unknown.status).toBe(400);
    const first = await startExport(org.owner.secret, {});
    const second = await org.as.post<unknown, Export>("/v1/org/exports", {});
    expect(second.status).toBe(409);
    expect(second.error.code).toBe("conflict");
    await runToEnd(org.as, first.id);
  });

  test("two concurrent requests open one export: the other is a conflict", async () => {
    const fresh = await createApiTenant(stack.db);
    const as = api(stack, fresh.secret);
    const answers = await Promise.all([0, 1, 2].map(() => as.post<unknown, Export>("/v1/org/exports", {})));
    expect(answers.map((a) => a.status).sort()).toEqual([202, 409, 409]);
    const open = answers.find((a) => a.status === 202)!.body;
    await runToEnd(as, open.id);
  });

  test("an Idempotency-Key retry returns the same job and opens no second one", async () => {
    const key = `export-${Date.now()}`;
    const first = await startExport(org.owner.secret, { includeEvents: true }, key);
    const again = await startExport(org.owner.secret, { includeEvents: true }, key);
    expect(again.id).toBe(first.id);
    const { rows } = await sql<{ n: string }>`
      select count(*) as n from org_exports where org_id = ${org.orgId} and status in ('queued', 'running')`.execute(
      stack.db,
    );
    expect(Number(rows[0]!.n)).toBe(1);
    await runToEnd(org.as, first.id);
  });
});

describe("tenancy and roles", () => {
  test("another org's export is 404, a developer key 403, a project-restricted admin key 403", async () => {
    const created = await startExport(org.owner.secret, {});
    const outsider = await createApiTenant(stack.db);
    const foreign = await api(stack, outsider.secret).get<Export>(`/v1/org/exports/${created.id}`);
    expect(foreign.status).toBe(404);
    const list = await api(stack, outsider.secret).get<{ data: Export[] }>("/v1/org/exports");
    expect(list.body.data).toEqual([]);
    const developer = await addApiKey(stack.db, org.orgId, "developer");
    expect((await api(stack, developer.secret).post("/v1/org/exports", {})).status).toBe(403);
    expect((await api(stack, developer.secret).get(`/v1/org/exports/${created.id}`)).status).toBe(403);
    const restricted = await addApiKey(stack.db, org.orgId, "admin", org.projectId);
    expect((await api(stack, restricted.secret).get(`/v1/org/exports/${created.id}`)).status).toBe(403);
    const admin = await addApiKey(stack.db, org.orgId, "admin");
    const mine = await api(stack, admin.secret).get<{ data: Export[] }>("/v1/org/exports");
    expect(mine.body.data.map((e) => e.id)).toContain(created.id);
    await runToEnd(org.as, created.id);
  });

  test("the exporter role reads no secret column and no other org's rows", async () => {
    await expect(sql`select key_sha256 from api_keys limit 1`.execute(exporterDb)).rejects.toThrow(
      /permission denied/,
    );
    await expect(sql`select token_ciphertext from destinations limit 1`.execute(exporterDb)).rejects.toThrow(
      /permission denied/,
    );
    await expect(sql`delete from projects`.execute(exporterDb)).rejects.toThrow(/permission denied/);
    // Outside a tenant transaction RLS shows nothing at all.
    const { rows } = await sql<{ n: string }>`select count(*) as n from projects`.execute(exporterDb);
    expect(Number(rows[0]!.n)).toBe(0);
  });
});

describe("crash and resume", () => {
  /** A store whose n-th part write or n-th multipart part fails (a Worker dying mid-step), once. */
  function failingOnce(store: ObjectStore, at: { put?: number; part?: number }): ObjectStore {
    let puts = 0;
    let parts = 0;
    return {
      ...store,
      async put(key, body, type) {
        puts += 1;
        if (puts === at.put) throw new Error("simulated crash");
        return store.put(key, body, type);
      },
      async uploadPart(key, uploadId, n, body) {
        parts += 1;
        if (parts === at.part) throw new Error("simulated crash");
        return store.uploadPart(key, uploadId, n, body);
      },
    };
  }

  test("a step that dies is repeated by the next run; the archive has every row exactly once", async () => {
    const created = await startExport(org.owner.secret, { includeEvents: true });
    const limits = { ...DEFAULT_EXPORT_LIMITS, pageRows: 2, stepsPerRun: 1000, partBytes: 64 };
    let now = Date.now() + 10 * 86_400_000;
    // Each run 3 h after the last: past any retry wait (runExport.ts retryBackoffSeconds).
    const deps = (exports: ObjectStore): ExportDeps => {
      now += 3 * 3_600_000;
      return { db: exporterDb, exports, archive: s3.storage, media: s3.media, now: new Date(now), limits };
    };
    // Crash in the middle of the table dump, then in the middle of assembly (its third multipart part).
    for (const at of [{ put: 9 }, { part: 3 }]) {
      await expect(advanceExport(deps(failingOnce(s3.exports, at)), created.id, org.orgId)).rejects.toThrow(
        "simulated crash",
      );
    }
    const { rows: mid } = await sql<{ status: string; attempts: number }>`
      select status, attempts from org_exports where id = ${created.id}`.execute(stack.db);
    // Each crashed run had recorded steps first: failures count from the last progress, so one, not two.
    expect(mid[0]).toEqual({ status: "running", attempts: 1 });
    // The resumed run's multipart parts: all but the last at least the part size.
    const sizes: number[] = [];
    const measuring: ObjectStore = {
      ...s3.exports,
      async uploadPart(key, uploadId, n, body) {
        sizes.push(body.length);
        return s3.exports.uploadPart(key, uploadId, n, body);
      },
    };
    let result = await advanceExport(deps(measuring), created.id, org.orgId);
    for (let i = 0; i < 5 && !result.done; i++)
      result = await advanceExport(deps(s3.exports), created.id, org.orgId);
    expect(result.done).toBe(true);
    expect(sizes.length).toBeGreaterThan(2);
    for (const size of sizes.slice(0, -1)) expect(size).toBeGreaterThanOrEqual(limits.partBytes);
    const answer = await org.as.get<Export>(`/v1/org/exports/${created.id}`);
    expect(answer.body.status).toBe("succeeded");
    const unpacked = await unpack(answer.body.download!.url);
    try {
      for (const resource of EXPORT_RESOURCES.filter(
        (r) => !["audit_log", "request_logs", "webhook_attempts"].includes(r.table),
      )) {
        const rows = await ndjson(unpacked.dir, `${resource.name}.ndjson.gz`);
        expect(rows.length, resource.name).toBe(await dbCount(resource.table, resource.orgColumn, org.orgId));
      }
      const cold = await ndjson(unpacked.dir, "audit_log_archived.ndjson.gz");
      expect(cold.length).toBe(org.coldAuditIds.length);
    } finally {
      await rm(unpacked.dir, { recursive: true, force: true });
    }
  });

  test("an export that keeps failing is marked failed, keeps no cursor, and the expiry job deletes its parts", async () => {
    const created = await startExport(org.owner.secret, { includeEvents: true });
    const limits = { ...DEFAULT_EXPORT_LIMITS, pageRows: 2, stepsPerRun: 1000, maxAttempts: 2 };
    // Writes work for a while (parts exist), then the store breaks for good.
    let puts = 0;
    const breaking: ObjectStore = {
      ...s3.exports,
      async put(key, body, type) {
        puts += 1;
        if (puts > 5) throw new Error("storage down");
        return s3.exports.put(key, body, type);
      },
    };
    let now = Date.now() + 30 * 86_400_000;
    const deps = (): ExportDeps => {
      now += 3 * 3_600_000;
      return {
        db: exporterDb,
        exports: breaking,
        archive: s3.storage,
        media: s3.media,
        now: new Date(now),
        limits,
      };
    };
    await expect(advanceExport(deps(), created.id, org.orgId)).rejects.toThrow(
      `export ${created.id}: storage down`,
    );
    // The second run writes nothing before failing: two failures in a row without progress.
    expect(await advanceExport(deps(), created.id, org.orgId)).toMatchObject({ done: true, failed: true });
    const answer = await org.as.get<Export>(`/v1/org/exports/${created.id}`);
    expect(answer.body).toMatchObject({ status: "failed", errorCode: "export_failed", download: null });
    const state = async () =>
      (
        await sql<{ cursor: unknown; cleanup: boolean }>`
          select state->'cursor' as cursor, (state->>'cleanup')::boolean as cleanup
          from org_exports where id = ${created.id}`.execute(stack.db)
      ).rows[0]!;
    expect(await state()).toEqual({ cursor: null, cleanup: true });
    const prefix = exportPrefix(org.orgId, created.id);
    expect((await s3.exports.list(prefix)).keys.length).toBeGreaterThan(0);
    // The expiry job (the every-minute trigger, as the maintenance role) deletes them and says so.
    await stack.cron(new Date(now + 60_000), "* * * * *");
    expect((await s3.exports.list(prefix)).keys).toEqual([]);
    expect(await state()).toEqual({ cursor: null, cleanup: false });
  });

  test("a storage outage of an hour is waited out: retries back off, and the export then succeeds", async () => {
    const flaky = await startLocalS3();
    try {
      const created = await startExport(org.owner.secret, {});
      const limits = { ...DEFAULT_EXPORT_LIMITS, pageRows: 2, stepsPerRun: 3 };
      const t0 = Date.now() + 50 * 86_400_000;
      const deps = (minute: number, stepsPerRun = 3): ExportDeps => ({
        db: exporterDb,
        exports: flaky.exports,
        archive: s3.storage,
        media: s3.media,
        now: new Date(t0 + minute * 60_000),
        limits: { ...limits, stepsPerRun },
      });
      expect((await advanceExport(deps(0), created.id, org.orgId)).steps).toBe(3);
      await flaky.stop();
      // The every-minute trigger for an hour: only a few runs try (1, 5, 15, 30 minutes apart), none fails
      // the export.
      let tried = 0;
      for (let minute = 1; minute <= 60; minute++) {
        const result = await advanceExport(deps(minute), created.id, org.orgId).catch(() => ({ steps: -1 }));
        if (result.steps !== 0) tried += 1;
      }
      expect(tried).toBe(5);
      const { rows } = await sql<{ status: string; attempts: number }>`
        select status, attempts from org_exports where id = ${created.id}`.execute(stack.db);
      expect(rows[0]).toEqual({ status: "running", attempts: 5 });
      await flaky.start();
      let result = { steps: 0, done: false };
      for (let minute = 61; minute <= 400 && !result.done; minute++) {
        result = await advanceExport(deps(minute, 1000), created.id, org.orgId);
      }
      expect(result.done).toBe(true);
      const answer = await org.as.get<Export>(`/v1/org/exports/${created.id}`);
      expect(answer.body.status).toBe("succeeded");
    } finally {
      await flaky.dispose();
    }
  });

  test("two runners never both hold an export: the second finds it taken", async () => {
    const created = await startExport(org.owner.secret, {});
    const now = new Date(Date.now() + 20 * 86_400_000);
    const limits = { ...DEFAULT_EXPORT_LIMITS, pageRows: 2, stepsPerRun: 1 };
    const base = { db: exporterDb, exports: s3.exports, archive: s3.storage, media: s3.media, now, limits };
    // The first runner is mid-run (holds the heartbeat) when the second comes at the same instant.
    await sql`update org_exports set status = 'running', heartbeat_at = ${now} where id = ${created.id}`.execute(
      stack.db,
    );
    expect(await advanceExport(base, created.id, org.orgId)).toEqual({ steps: 0, done: false });
    // After the lease, a new runner takes over.
    const later = { ...base, now: new Date(now.getTime() + (DEFAULT_EXPORT_LIMITS.leaseSeconds + 1) * 1000) };
    expect((await advanceExport(later, created.id, org.orgId)).steps).toBe(1);
    await runToEnd(org.as, created.id);
  });
});

test("an org marked for deletion is exported no further: its open export takes no step, writes nothing", async () => {
  const owner = await createApiTenant(stack.db, "owner");
  const created = await startExport(owner.secret, { includeEvents: true });
  const deps: ExportDeps = {
    db: exporterDb,
    exports: s3.exports,
    archive: s3.storage,
    media: s3.media,
    now: new Date(Date.now() + 40 * 86_400_000),
    limits: { ...DEFAULT_EXPORT_LIMITS, pageRows: 2, stepsPerRun: 3 },
  };
  // The same export advances while the org lives (the check below can fail)...
  expect((await advanceExport(deps, created.id, owner.orgId)).steps).toBeGreaterThan(0);
  const parts = (await s3.exports.list(exportPrefix(owner.orgId, created.id))).keys;
  expect(parts.length).toBeGreaterThan(0);
  for (const key of parts) await s3.exports.delete(key);

  const asked = await api(stack, owner.secret).send("DELETE", "/v1/org", { confirm: "API test org" });
  expect(asked.status, asked.text).toBe(202);
  // ...and not once the org is marked: no step, no part under its prefix behind the deletion's cascade.
  const later = { ...deps, now: new Date(deps.now.getTime() + 3_600_000) };
  expect(await advanceExport(later, created.id, owner.orgId)).toEqual({ steps: 0, done: false });
  expect((await s3.exports.list(exportPrefix(owner.orgId, created.id))).keys).toEqual([]);
});

test("an export run already writing when its org is deleted leaves nothing behind the completed receipt", async () => {
  const owner = await createApiTenant(stack.db, "owner");
  const created = await startExport(owner.secret, { includeEvents: true });
  const maintenance = createNodeDb(maintenanceRoleUrl(testDatabaseUrl()), 1);
  try {
    // The runner takes the export while the org lives and stops inside its first write.
    let reached: () => void = () => {};
    const atPut = new Promise<void>((resolve) => {
      reached = resolve;
    });
    let release: () => void = () => {};
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    let first = true;
    const gated: ObjectStore = {
      ...s3.exports,
      async put(key, body, type) {
        if (first) {
          first = false;
          reached();
          await gate;
        }
        return s3.exports.put(key, body, type);
      },
    };
    const now = new Date(Date.now() + 60 * 86_400_000);
    const limits = { ...DEFAULT_EXPORT_LIMITS, pageRows: 2, stepsPerRun: 50 };
    const deps: ExportDeps = {
      db: exporterDb,
      exports: gated,
      archive: s3.storage,
      media: s3.media,
      now,
      limits,
    };
    const runner = advanceExport(deps, created.id, owner.orgId);
    await atPut;

    const asked = await api(stack, owner.secret).send("DELETE", "/v1/org", { confirm: "API test org" });
    expect(asked.status, asked.text).toBe(202);
    const deletionId = (JSON.parse(asked.text) as { id: string }).id;
    const status = async () =>
      (
        await stack.db
          .selectFrom("org_deletions")
          .select("status")
          .where("id", "=", deletionId)
          .executeTakeFirst()
      )?.status;
    const stores = { archive: s3.storage, deadLetters: s3.deadLetters, media: s3.media, exports: s3.exports };
    // While the runner may still write, the cascade does not sweep the org's exports, so it cannot complete.
    for (let i = 0; i < 5; i++)
      await runDeletions(maintenance, "org", new Date(now.getTime() + 1_000), stores);
    expect(await status()).not.toBe("completed");

    // The runner's write lands; recording it is refused (the org is marked), so it stops there.
    release();
    expect(await runner).toEqual({ steps: 1, done: false });
    expect((await s3.exports.list(exportPrefix(owner.orgId, created.id))).keys.length).toBe(1);

    // A lease later the sweep runs, the part goes, the receipt completes, and nothing of the org is left.
    const later = new Date(now.getTime() + (DEFAULT_EXPORT_LIMITS.leaseSeconds + 1) * 1000);
    for (let i = 0; i < 10 && (await status()) !== "completed"; i++) {
      await runDeletions(maintenance, "org", later, stores);
    }
    expect(await status()).toBe("completed");
    expect((await s3.exports.list(`exports/${encodeURIComponent(owner.orgId)}/`)).keys).toEqual([]);
  } finally {
    await maintenance.destroy();
  }
});

test("a completed deletion request withdraws the org's exports with events; the expiry job deletes their objects", async () => {
  const owner = await createApiTenant(stack.db, "owner");
  const as = api(stack, owner.secret);
  const project = await as.post<unknown, { id: string }>("/v1/projects", { name: "Shop" });
  expect(project.status, project.text).toBe(201);
  const withEvents = await startExport(owner.secret, { includeEvents: true });
  expect((await runToEnd(as, withEvents.id)).answer.status).toBe("succeeded");
  const withoutEvents = await startExport(owner.secret, {});
  expect((await runToEnd(as, withoutEvents.id)).answer.status).toBe("succeeded");
  const prefixOf = (id: string) => exportPrefix(owner.orgId, id);
  expect((await s3.exports.list(prefixOf(withEvents.id))).keys.length).toBeGreaterThan(0);

  const asked = await as.post<unknown, { id: string }>(`/v1/projects/${project.body.id}/deletion-requests`, {
    userId: "user-who-left",
  });
  expect(asked.status, asked.text).toBe(202);
  const maintenance = createNodeDb(maintenanceRoleUrl(testDatabaseUrl()), 1);
  try {
    await executeDeletions(maintenance, new Date(Date.now() + 1_000));
  } finally {
    await maintenance.destroy();
  }

  // The archive that may hold the user's events is withdrawn at once: no download any more.
  const withdrawn = await as.get<Export>(`/v1/org/exports/${withEvents.id}`);
  expect(withdrawn.body).toMatchObject({
    status: "expired",
    errorCode: "withdrawn_by_deletion",
    download: null,
  });
  // One without events holds no end user's data: it stays downloadable.
  const kept = await as.get<Export>(`/v1/org/exports/${withoutEvents.id}`);
  expect(kept.body.status).toBe("succeeded");
  expect(kept.body.download).not.toBeNull();
  // The every-minute expiry job deletes the withdrawn archive's objects and leaves the other's.
  clock += 61_000;
  await stack.cron(new Date(clock), "* * * * *");
  expect((await s3.exports.list(prefixOf(withEvents.id))).keys).toEqual([]);
  expect((await s3.exports.list(prefixOf(withoutEvents.id))).keys.length).toBeGreaterThan(0);
  const audit = await stack.db
    .selectFrom("audit_log")
    .select("changes")
    .where("org_id", "=", owner.orgId)
    .where("action", "=", "deletion_request.completed")
    .executeTakeFirstOrThrow();
  expect((audit.changes as { after: { withdrawnExports: number } }).after.withdrawnExports).toBe(1);
});
