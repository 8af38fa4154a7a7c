import pg from "pg";
import { startEmbeddedPostgres } from "../../scripts/local/embedded-postgres";
import { migrate } from "../../scripts/local/migrate";

export interface BenchDatabase {
  /** Owner (superuser) connection string of the database the bench writes to. */
  ownerUrl: string;
  /** Where it is, for the report: "postgres 15.20 at 127.0.0.1:5432, database layers_bench_…". */
  label: string;
  embedded: boolean;
  /** Drops the bench database (server) or stops PGlite (embedded). */
  close(): Promise<void>;
}

const DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/test";

async function answers(url: string): Promise<boolean> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2_000 });
  try {
    await client.connect();
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => {});
  }
}

async function queryOne(url: string, text: string): Promise<string> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const { rows } = await client.query<{ value: string }>(text);
    return rows[0]?.value ?? "";
  } finally {
    await client.end();
  }
}

/**
 * BENCH_DATABASE_URL, else TEST_DATABASE_URL, else the local server if it answers, else embedded PGlite.
 * On a server the bench gets its own fresh database (dropped at the end), so it never touches the test
 * database other people are using and table sizes are the same on every run.
 */
export async function openBenchDatabase(): Promise<BenchDatabase> {
  const given = process.env.BENCH_DATABASE_URL ?? process.env.TEST_DATABASE_URL;
  const serverUrl = given ?? ((await answers(DEFAULT_URL)) ? DEFAULT_URL : undefined);

  if (!serverUrl) {
    const embedded = await startEmbeddedPostgres();
    await migrate(embedded.url);
    return {
      ownerUrl: embedded.url,
      label: `embedded PGlite at 127.0.0.1:${embedded.port} (no server found; figures are not CI figures)`,
      embedded: true,
      close: () => embedded.stop(),
    };
  }

  await dropStaleBenchDatabases(serverUrl);
  const name = `layers_bench_${Date.now()}`;
  await queryOne(serverUrl, `create database ${name}`);
  const ownerUrl = new URL(serverUrl);
  ownerUrl.pathname = `/${name}`;
  const close = async () => {
    await queryOne(serverUrl, `drop database if exists ${name} with (force)`);
  };
  try {
    await migrate(ownerUrl.toString());
    const version = await queryOne(ownerUrl.toString(), "select current_setting('server_version') as value");
    return {
      ownerUrl: ownerUrl.toString(),
      label: `postgres ${version} at ${ownerUrl.host}, fresh database ${name}`,
      embedded: false,
      close,
    };
  } catch (error) {
    await close();
    throw error;
  }
}

/**
 * A run killed outright (SIGKILL, a closed terminal) cannot drop its database; the next run does, once
 * it is an hour old. A bench takes minutes, so a database that old belongs to no running bench.
 */
async function dropStaleBenchDatabases(serverUrl: string): Promise<void> {
  const client = new pg.Client({ connectionString: serverUrl });
  await client.connect();
  try {
    const { rows } = await client.query<{ datname: string }>(
      "select datname from pg_database where datname ~ '^layers_bench_[0-9]+$'",
    );
    const cutoff = Date.now() - 3_600_000;
    for (const { datname } of rows) {
      if (Number(datname.slice("layers_bench_".length)) < cutoff) {
        await client.query(`drop database if exists ${datname} with (force)`);
      }
    }
  } finally {
    await client.end();
  }
}
