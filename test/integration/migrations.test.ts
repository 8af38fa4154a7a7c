import { readdir, readFile } from "node:fs/promises";
import path from "node:path";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { MIGRATIONS_DIR, migrate } from "../../scripts/local/migrate";
import { dumpSchema } from "../../scripts/local/schema-dump";
import {
  createScratchDatabase,
  type ScratchDatabase,
  scratchServerUrl,
} from "../../scripts/local/scratch-database";

// A deployed database reaches the current schema through the migrations, keeping its rows, and ends up with
// the same schema as a database created today. Scratch databases and pg_dump need the real server, which
// CI always has (TEST_DATABASE_URL).

const realPostgres = Boolean(process.env.TEST_DATABASE_URL);

/** A row in every tenant table but idempotency_keys, whose key changed (below). */
const ROWS = `
  insert into organizations (id, name, created_at) values ('org_m1', 'Migrated Org', '2026-01-01T00:00:00Z');
  insert into projects (id, org_id, name, event_retention_days, created_at, updated_at)
    values ('prj_m1', 'org_m1', 'App', 90, '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z');
  insert into sdk_keys (id, org_id, project_id, key_sha256, display_prefix, created_at)
    values ('sk_m1', 'org_m1', 'prj_m1', repeat('a', 64), 'lp_pub_aa', '2026-01-01T00:00:00Z');
  insert into sdk_events (org_id, project_id, event_id, name, user_id, ts, received_at, os, country, email_sha256,
                          properties)
    values ('org_m1', 'prj_m1', 'evt_1', 'purchase', 'u1', '2026-01-02T03:04:05.123456Z',
            '2026-01-02T03:04:06Z', 'iOS', 'DE', repeat('b', 64), '{"plan": "pro", "n": 2}');
  insert into sdk_users (org_id, project_id, user_id, properties, property_times, first_seen_at, last_seen_at,
                         email_sha256, email_sha256_at)
    values ('org_m1', 'prj_m1', 'u1', '{"plan": "pro"}', '{"plan": 1767323045123}', '2026-01-02T03:04:05Z',
            '2026-01-02T03:04:05Z', repeat('b', 64), '2026-01-02T03:04:05Z');
  insert into event_daily_counts (org_id, project_id, day, event_name, country, count)
    values ('org_m1', 'prj_m1', '2026-01-02', 'purchase', 'DE', 3);
  insert into members (id, org_id, email, name, role, created_at, updated_at)
    values ('mem_m1', 'org_m1', 'owner@example.com', 'Owner', 'owner', '2026-01-01T00:00:00Z',
            '2026-01-01T00:00:00Z');
  insert into api_keys (id, org_id, name, role, project_id, mode, key_sha256, display_prefix, created_at)
    values ('key_m1', 'org_m1', 'Server', 'admin', null, 'live', repeat('c', 64), 'lp_live_cc',
            '2026-01-01T00:00:00Z');
  insert into audit_log (id, org_id, occurred_at, actor_type, actor_id, action, resource_type, resource_id,
                         request_id, changes)
    values ('aud_m1', 'org_m1', '2026-01-01T00:00:00.000001Z', 'api_key', 'key_m1', 'project.created', 'project',
            'prj_m1', 'req_m1', '{"name": "App"}');
  insert into request_logs (request_id, org_id, api_key_id, method, route, status, latency_ms, occurred_at)
    values ('req_m1', 'org_m1', 'key_m1', 'POST', '/v1/projects', 201, 12, '2026-01-01T00:00:00Z');
  insert into destinations (org_id, project_id, kind, enabled, status, config, token_ciphertext, token_key_id,
                            token_last4, created_at, updated_at)
    values ('org_m1', 'prj_m1', 'meta', true, 'active', '{"datasetId": "123"}', 'Y2lwaGVydGV4dA==', 'k1',
            'wxyz', '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z');
  insert into deletion_requests (id, org_id, project_id, user_id, user_id_sha256, subject_sha256, suppress,
                                 status, deleted_events, deleted_users, attempts, requested_at, started_at,
                                 finished_at, request_id, requested_by)
    values ('del_m1', 'org_m1', 'prj_m1', null, repeat('e', 64), repeat('f', 64), true, 'completed', 4, 1, 1,
            '2026-01-03T00:00:00Z', '2026-01-03T00:00:01Z', '2026-01-03T00:00:02Z', 'req_m2', 'key_m1');
  insert into suppressions (org_id, project_id, identifier_type, identifier_sha256, deletion_request_id,
                            created_at)
    values ('org_m1', 'prj_m1', 'user_id', repeat('e', 64), 'del_m1', '2026-01-03T00:00:00Z');
  insert into relay_deliveries (org_id, project_id, batch_id, destination, event_count, sent_count, skipped,
                                status, attempts, response_code, error, first_attempt_at, last_attempt_at)
    values ('org_m1', 'prj_m1', 'bat_m1', 'meta', 3, 2, '{"too_old": 1}', 'delivered', 1, 200, null,
            '2026-01-02T00:00:00Z', '2026-01-02T00:00:00Z');
  insert into relay_dead_letters (org_id, project_id, batch_id, destination, reason, response_code, error,
                                  events, dead_at)
    values ('org_m1', 'prj_m1', 'bat_m2', 'tiktok', 'rejected', 400, 'bad event', '[{"eventId": "evt_1"}]',
            '2026-01-02T00:00:00Z');
  insert into apple_attributions (org_id, project_id, user_id, event_id, attribution, apple_org_id, campaign_id,
                                  ad_group_id, keyword_id, ad_id, claim_type, conversion_type,
                                  country_or_region, attributed_at)
    values ('org_m1', 'prj_m1', 'u1', 'evt_1', true, 1234567890123, 42, 43, 44, 45, 'Click', 'Download', 'DE',
            '2026-01-02T00:00:00Z');
`;

/** An Idempotency-Key record as the previous release stored it: scoped to the org only. */
const RELEASE_IDEMPOTENCY_ROW = `
  insert into idempotency_keys (org_id, idempotency_key, request_sha256, state, response_status, response_body,
                                created_at, completed_at)
    values ('org_m1', 'idem-1', repeat('d', 64), 'completed', 201, '{"b": 1, "a": 2}', now(), now());
`;

/** The same record today: scoped to the org and the API key that sent it. */
const IDEMPOTENCY_ROW = `
  insert into idempotency_keys (org_id, api_key_id, idempotency_key, request_sha256, state, response_status,
                                response_body, created_at, completed_at)
    values ('org_m1', 'key_m1', 'idem-1', repeat('d', 64), 'completed', 201, '{"b": 1, "a": 2}', now(), now());
`;

const TABLES = [
  "organizations",
  "projects",
  "sdk_keys",
  "sdk_events",
  "sdk_users",
  "event_daily_counts",
  "members",
  "api_keys",
  "audit_log",
  "idempotency_keys",
  "request_logs",
  "destinations",
  "deletion_requests",
  "suppressions",
  "relay_deliveries",
  "relay_dead_letters",
  "apple_attributions",
] as const;

type Rows = Record<string, Record<string, unknown>[]>;

async function withClient<T>(url: string, run: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await run(client);
  } finally {
    await client.end();
  }
}

/** Every row of every tenant table, as Postgres renders it to JSON (full timestamp precision, bigint exact). */
function snapshot(url: string): Promise<Rows> {
  return withClient(url, async (client) => {
    const out: Rows = {};
    for (const table of TABLES) {
      const { rows } = await client.query<{ row: Record<string, unknown> }>(
        `select to_jsonb(t) as row from ${table} t order by to_jsonb(t)::text`,
      );
      out[table] = rows.map((r) => r.row);
    }
    return out;
  });
}

/** Each row cut down to the columns it had before: what a migration must keep as it was. */
function onlyColumnsOf(before: Rows, after: Rows): Rows {
  const out: Rows = {};
  for (const [table, rows] of Object.entries(after)) {
    const columns = Object.keys(before[table]?.[0] ?? {});
    out[table] = rows.map((row) => Object.fromEntries(columns.map((c) => [c, row[c]])));
  }
  return out;
}

function appliedMigrations(url: string): Promise<string[]> {
  return withClient(url, async (client) => {
    const { rows } = await client.query<{ name: string }>(
      "select name from layers_migrations.kysely_migration order by name",
    );
    return rows.map((r) => r.name);
  });
}

describe("migrations", () => {
  const scratch: ScratchDatabase[] = [];
  let allMigrations: string[];

  beforeAll(async () => {
    allMigrations = (await readdir(MIGRATIONS_DIR))
      .filter((f) => f.endsWith(".sql"))
      .sort()
      .map((f) => f.slice(0, -".sql".length));
  });
  afterAll(async () => {
    for (const db of scratch) await db.drop();
  });

  async function newDatabase(purpose: string): Promise<string> {
    const db = await createScratchDatabase(scratchServerUrl(), purpose);
    scratch.push(db);
    return db.url;
  }

  test.runIf(realPostgres)(
    "a database of the previous release keeps its rows and ends with a fresh database's schema",
    async () => {
      // The previous release applied its schema.sql, which is 0001_baseline byte for byte, and recorded
      // nothing: its databases have no migrations table.
      const released = await newDatabase("rel");
      const baseline = await readFile(path.join(MIGRATIONS_DIR, "0001_baseline.sql"), "utf8");
      await withClient(released, async (client) => {
        await client.query("set client_min_messages = warning");
        await client.query(baseline);
        await client.query(ROWS + RELEASE_IDEMPOTENCY_ROW);
      });
      const before = await snapshot(released);
      for (const table of TABLES) expect(before[table], table).toHaveLength(1);

      // The baseline runs again (idempotent, it changes nothing there) and is recorded; the rest follow.
      expect(await migrate(released)).toEqual(allMigrations);
      expect(await appliedMigrations(released)).toEqual(allMigrations);

      const after = await snapshot(released);
      // Idempotency records from before the per-API-key scope cannot be attributed to a key: that 24-hour
      // cache is the one thing the upgrade drops (0002). Every other row is kept as it was.
      expect(after.idempotency_keys).toEqual([]);
      expect(onlyColumnsOf(before, after)).toEqual({ ...before, idempotency_keys: [] });
      expect(after.deletion_requests![0]).toMatchObject({ deleted_dead_lettered_events: 0 });
      expect(after.request_logs![0]).toMatchObject({ client_request_id: null });

      const fresh = await newDatabase("new");
      expect(await migrate(fresh)).toEqual(allMigrations);
      expect(await dumpSchema(released)).toEqual(await dumpSchema(fresh));

      // The migrated key serves the API's hot path: the request log is written through the 9-argument
      // function, under the API's role, with its org check.
      await withClient(released, async (client) => {
        await client.query("begin");
        await client.query("set local role layers_api");
        await client.query(
          "select write_request_log('req_m3', 'org_m1', 'key_m1', 'GET', '/v1/projects', 200, 3, now(), 'client-abc-123')",
        );
        await client.query("commit");
        const { rows } = await client.query(
          "select client_request_id from request_logs where request_id = 'req_m3'",
        );
        expect(rows).toEqual([{ client_request_id: "client-abc-123" }]);
      });
    },
  );

  test.runIf(realPostgres)("running the migrator on an up-to-date database changes nothing", async () => {
    const url = await newDatabase("twice");
    expect(await migrate(url)).toEqual(allMigrations);
    await withClient(url, (client) => client.query(ROWS + IDEMPOTENCY_ROW));
    const schema = await dumpSchema(url);
    const rows = await snapshot(url);
    const recorded = await withClient(url, async (client) => {
      const { rows } = await client.query("select name, timestamp from layers_migrations.kysely_migration");
      return rows;
    });

    expect(await migrate(url)).toEqual([]);
    expect(await dumpSchema(url)).toEqual(schema);
    expect(await snapshot(url)).toEqual(rows);
    await withClient(url, async (client) => {
      const { rows } = await client.query("select name, timestamp from layers_migrations.kysely_migration");
      expect(rows).toEqual(recorded);
    });
  });
});
