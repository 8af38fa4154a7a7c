import { randomBytes } from "node:crypto";
import { copyFile, mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { sql } from "kysely";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { CONTENT_KINDS, PROVIDER_NAMES } from "../../../functions/content/providers/types";
import { openStorageSecret, sealStorageSecret } from "../../../functions/content/storageSecret";
import { parseKeyring, TokenDecryptError } from "../../../functions/destinations/crypto";
import { MIGRATIONS_DIR, migrate, roleUrl } from "../../../scripts/local/migrate";
import { createNodeDb } from "../../../scripts/local/node-db";
import { createScratchDatabase, scratchServerUrl } from "../../../scripts/local/scratch-database";
import { type Db, withTenant } from "../../../shared/db";
import type { ContentKindColumn, ContentProviderColumn } from "../../../shared/db/columnTypes";
import { newId } from "../../../shared/ids";
import { testDatabaseUrl } from "../../support/database";
import { findInTables } from "../../support/scan";
import { createTenant, type TestTenant } from "../../support/tenant";

// The content tables of migration 0010: tenant isolation under the API's role, the seed's storage matrix
// held by the database itself, one container per job, deletions that leave nothing dangling, storage
// secrets sealed like destination tokens, and the backfill that keeps every existing project's relay on.

const CONTENT_TABLES = [
  "project_layers",
  "storage_configs",
  "content_jobs",
  "content_containers",
  "ads_content",
  "ads_content_containers",
  "project_ads_content",
] as const;

let owner: Db;
let api: Db;
let a: TestTenant;
let b: TestTenant;
const keyring = parseKeyring({
  DESTINATION_KEYS: JSON.stringify({ k1: randomBytes(32).toString("base64") }),
  DESTINATION_KEY_ID: "k1",
});
const SECRET = `wJalrXUtnFEMI/K7MDENG/${randomBytes(8).toString("hex")}`;

/** One row in every content table for `t`; returns the ids. */
async function seed(t: TestTenant) {
  const ids = { storage: newId("stc"), job: newId("job"), container: newId("ctr"), ads: newId("adc") };
  const sealed = await sealStorageSecret(keyring, SECRET, { orgId: t.orgId, storageConfigId: ids.storage });
  await withTenant(owner, t.orgId, async (tx) => {
    await sql`insert into project_layers (org_id, project_id, layer) values (${t.orgId}, ${t.projectId}, 'content')`.execute(
      tx,
    );
    await sql`insert into storage_configs (id, org_id, name, endpoint, region, bucket, access_key_id,
        secret_ciphertext, secret_key_id, secret_last4)
      values (${ids.storage}, ${t.orgId}, 'media', 'https://s3.example.com', 'us-east-1', 'partner-media',
        'AKIAEXAMPLE', ${sealed.ciphertext}, ${sealed.keyId}, ${sealed.last4})`.execute(tx);
    await sql`insert into content_jobs (id, org_id, project_id, kind, status, storage_mode, async, provider, model, finished_at)
      values (${ids.job}, ${t.orgId}, ${t.projectId}, 'image', 'succeeded', 'cloud', true, 'local', 'layers-local-1', now())`.execute(
      tx,
    );
    await sql`insert into content_containers (id, org_id, project_id, job_id, kind, storage_mode, bucket, object_key,
        size_bytes, sha256, media_type, provider, model)
      values (${ids.container}, ${t.orgId}, ${t.projectId}, ${ids.job}, 'image', 'cloud', 'layers-media',
        ${`${t.orgId}/${ids.container}.png`}, 123, ${"a".repeat(64)}, 'image/png', 'local', 'layers-local-1')`.execute(
      tx,
    );
    await sql`insert into ads_content (id, org_id, name) values (${ids.ads}, ${t.orgId}, 'Spring')`.execute(
      tx,
    );
    await sql`insert into ads_content_containers (org_id, ads_content_id, container_id, position)
      values (${t.orgId}, ${ids.ads}, ${ids.container}, 0)`.execute(tx);
    await sql`insert into project_ads_content (org_id, project_id, ads_content_id)
      values (${t.orgId}, ${t.projectId}, ${ids.ads})`.execute(tx);
  });
  return { ...ids, sealed };
}

let seeded: { a: Awaited<ReturnType<typeof seed>>; b: Awaited<ReturnType<typeof seed>> };

beforeAll(async () => {
  owner = createNodeDb(testDatabaseUrl());
  api = createNodeDb(roleUrl(testDatabaseUrl(), "layers_api"));
  a = await createTenant(owner);
  b = await createTenant(owner);
  seeded = { a: await seed(a), b: await seed(b) };
});
afterAll(async () => {
  await owner?.destroy();
  await api?.destroy();
});

async function sqlState(run: () => Promise<unknown>): Promise<string | undefined> {
  return run().then(
    () => undefined,
    (e: { code?: string }) => e.code,
  );
}

describe("tenant isolation (RLS forced, the API's role)", () => {
  test.each(
    CONTENT_TABLES,
  )("%s: an org reads only its own rows, and cannot write another's", async (table) => {
    const orgs = await withTenant(api, a.orgId, async (tx) => {
      const { rows } = await sql<{ org_id: string }>`select org_id from ${sql.table(table)}`.execute(tx);
      return [...new Set(rows.map((r) => r.org_id))];
    });
    expect(orgs).toEqual([a.orgId]);
    const { rows } = await sql<{ forced: boolean }>`
      select relforcerowsecurity as forced from pg_class where relname = ${table}`.execute(owner);
    expect(rows[0]?.forced).toBe(true);
  });

  test("a row claiming another org is refused by the policy", async () => {
    const state = await sqlState(() =>
      withTenant(api, a.orgId, (tx) =>
        sql`insert into ads_content (id, org_id, name) values (${newId("adc")}, ${b.orgId}, 'smuggled')`.execute(
          tx,
        ),
      ),
    );
    expect(state).toBe("42501");
  });
});

describe("the storage matrix and the job/container rules hold in the table", () => {
  const job = (t: TestTenant, mode: string, isAsync: boolean, config: string | null = null) =>
    sqlState(() =>
      withTenant(api, t.orgId, (tx) =>
        sql`insert into content_jobs (id, org_id, project_id, kind, status, storage_mode, storage_config_id, async)
          values (${newId("job")}, ${t.orgId}, ${t.projectId}, 'copy', 'queued', ${mode}, ${config}, ${isAsync})`.execute(
          tx,
        ),
      ),
    );

  test("cloud sync or async, own async only (with a config), none sync only", async () => {
    expect(await job(a, "cloud", true)).toBeUndefined();
    expect(await job(a, "cloud", false)).toBeUndefined();
    expect(await job(a, "own", true, seeded.a.storage)).toBeUndefined();
    expect(await job(a, "own", false, seeded.a.storage)).toBe("23514");
    expect(await job(a, "own", true)).toBe("23514");
    expect(await job(a, "none", false)).toBeUndefined();
    expect(await job(a, "none", true)).toBe("23514");
  });

  test("one container per job; a failed job names its error; a finished job its time", async () => {
    const second = await sqlState(() =>
      withTenant(api, a.orgId, (tx) =>
        sql`insert into content_containers (id, org_id, project_id, job_id, kind, storage_mode, bucket, object_key,
            size_bytes, sha256, media_type, provider, model)
          values (${newId("ctr")}, ${a.orgId}, ${a.projectId}, ${seeded.a.job}, 'image', 'cloud', 'layers-media', 'k2',
            1, ${"b".repeat(64)}, 'image/png', 'local', 'm')`.execute(tx),
      ),
    );
    expect(second).toBe("23505");
    const failedWithoutCode = await sqlState(() =>
      withTenant(api, a.orgId, (tx) =>
        sql`update content_jobs set status = 'failed', finished_at = now() where id = ${seeded.a.job}`.execute(
          tx,
        ),
      ),
    );
    expect(failedWithoutCode).toBe("23514");
  });

  test("there is no column for the brief or the product info", async () => {
    const { rows } = await sql<{ column_name: string }>`
      select column_name from information_schema.columns
      where table_name in ('content_jobs', 'content_containers') and column_name ~ '(brief|product|prompt)'`.execute(
      owner,
    );
    expect(rows).toEqual([]);
  });
});

test("the columns allow exactly the kinds and providers the code knows (and the column types say so)", async () => {
  const allowed = async (table: string, column: string) => {
    const { rows } = await sql<{ def: string }>`
      select pg_get_constraintdef(c.oid) as def from pg_constraint c
      join pg_class t on t.oid = c.conrelid
      where t.relname = ${table} and c.contype = 'c' and pg_get_constraintdef(c.oid) like ${`%(${column} = ANY%`}`.execute(
      owner,
    );
    return [...(rows[0]?.def ?? "").matchAll(/'([a-z_]+)'::text/g)].map((m) => m[1]).sort();
  };
  for (const table of ["content_jobs", "content_containers"]) {
    expect(await allowed(table, "kind")).toEqual([...CONTENT_KINDS].sort());
    expect(await allowed(table, "provider")).toEqual([...PROVIDER_NAMES].sort());
  }
  // Compile-time: the generated row types and the code's lists are the same sets.
  const kinds: readonly ContentKindColumn[] = CONTENT_KINDS;
  const providers: readonly ContentProviderColumn[] = PROVIDER_NAMES;
  const back: readonly (typeof CONTENT_KINDS)[number][] = [] as ContentKindColumn[];
  const backProviders: readonly (typeof PROVIDER_NAMES)[number][] = [] as ContentProviderColumn[];
  expect([kinds.length, providers.length, back.length, backProviders.length]).toEqual([4, 4, 0, 0]);
});

describe("deletions leave nothing dangling", () => {
  test("deleting a container removes it from the library; a purged job leaves its container", async () => {
    const t = await createTenant(owner);
    const ids = await seed(t);
    await withTenant(api, t.orgId, (tx) =>
      sql`delete from content_containers where id = ${ids.container}`.execute(tx),
    );
    const links = await withTenant(owner, t.orgId, (tx) =>
      sql`select 1 from ads_content_containers where container_id = ${ids.container}`.execute(tx),
    );
    expect(links.rows).toEqual([]);

    const u = await createTenant(owner);
    const more = await seed(u);
    // Retention (maintenance role) purges job records after 400 days; the container keeps living.
    const maintenance = createNodeDb(roleUrl(testDatabaseUrl(), "layers_maintenance"));
    try {
      await sql`delete from content_jobs where id = ${more.job}`.execute(maintenance);
    } finally {
      await maintenance.destroy();
    }
    const { rows } = await sql<{ job_id: string | null }>`
      select job_id from content_containers where id = ${more.container}`.execute(owner);
    expect(rows).toEqual([{ job_id: null }]);
  });
});

describe("storage secrets", () => {
  test("stored sealed, opened only with the row's own binding, never in plaintext anywhere", async () => {
    const { rows } = await sql<{ secret_ciphertext: string; secret_key_id: string; secret_last4: string }>`
      select secret_ciphertext, secret_key_id, secret_last4 from storage_configs where id = ${seeded.a.storage}`.execute(
      owner,
    );
    const row = rows[0]!;
    expect(row.secret_last4).toBe(SECRET.slice(-4));
    const sealed = { ciphertext: row.secret_ciphertext, keyId: row.secret_key_id };
    expect(
      await openStorageSecret(keyring, sealed, { orgId: a.orgId, storageConfigId: seeded.a.storage }),
    ).toBe(SECRET);
    // Copied to another config or org, it does not open.
    await expect(
      openStorageSecret(keyring, sealed, { orgId: a.orgId, storageConfigId: seeded.b.storage }),
    ).rejects.toBeInstanceOf(TokenDecryptError);
    await expect(
      openStorageSecret(keyring, sealed, { orgId: b.orgId, storageConfigId: seeded.a.storage }),
    ).rejects.toBeInstanceOf(TokenDecryptError);
    expect(await findInTables(owner, [SECRET])).toEqual([]);
  });
});

test("the migration turns attribution on for every project that existed before it", async () => {
  const scratch = await createScratchDatabase(scratchServerUrl(), "layers0010");
  const dir = await mkdtemp(path.join(tmpdir(), "layers-migrations-"));
  const db = createNodeDb(scratch.url);
  try {
    const files = (await readdir(MIGRATIONS_DIR)).filter((f) => f.endsWith(".sql"));
    for (const f of files.filter((f) => f < "0010"))
      await copyFile(path.join(MIGRATIONS_DIR, f), path.join(dir, f));
    await migrate(scratch.url, dir);
    await sql`insert into organizations (id, name) values ('org_old', 'Old')`.execute(db);
    await sql`insert into projects (id, org_id, name) values ('proj_old', 'org_old', 'Old app')`.execute(db);
    for (const f of files.filter((f) => f >= "0010"))
      await copyFile(path.join(MIGRATIONS_DIR, f), path.join(dir, f));
    await migrate(scratch.url, dir);
    const { rows } = await sql`select org_id, project_id, layer, enabled from project_layers`.execute(db);
    expect(rows).toEqual([
      { org_id: "org_old", project_id: "proj_old", layer: "attribution", enabled: true },
    ]);
  } finally {
    await db.destroy();
    await rm(dir, { recursive: true, force: true });
    await scratch.drop();
  }
});
