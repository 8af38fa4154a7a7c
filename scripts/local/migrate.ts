import { readdir, readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { Kysely, type Migration, type MigrationProvider, Migrator, PostgresDialect, sql } from "kysely";
import pg from "pg";
import type { DbRole } from "../../shared/db";

/** The numbered SQL migrations (shared/db/migrations/README.md says how to add one). */
export const MIGRATIONS_DIR = fileURLToPath(new URL("../../shared/db/migrations/", import.meta.url));

/**
 * Where the migrator records what ran: a schema of its own, so its two tables are not tenant tables of
 * `public` (every table there has RLS forced and per-Worker grants, and the tests check both).
 */
export const MIGRATIONS_SCHEMA = "layers_migrations";

const FILE_NAME = /^(\d{4})_[a-z0-9_]+\.sql$/;

/** Each `NNNN_name.sql` file, in name order; its SQL runs as it is (multi-statement, plpgsql blocks). */
export class SqlFileMigrationProvider implements MigrationProvider {
  constructor(private readonly dir: string = MIGRATIONS_DIR) {}

  async getMigrations(): Promise<Record<string, Migration>> {
    const files = (await readdir(this.dir)).filter((f) => f.endsWith(".sql")).sort();
    const migrations: Record<string, Migration> = {};
    const numbers = new Set<string>();
    for (const file of files) {
      const match = FILE_NAME.exec(file);
      if (!match) throw new Error(`migration file name must be NNNN_lower_snake.sql: ${file}`);
      // Two files with one number would run in an order chosen by the rest of their names.
      if (numbers.has(match[1]!)) throw new Error(`two migrations are numbered ${match[1]}`);
      numbers.add(match[1]!);
      const text = await readFile(`${this.dir}/${file}`, "utf8");
      migrations[file.slice(0, -".sql".length)] = {
        // No parameters: the driver sends it as one simple query, so a file may hold many statements.
        up: async (db) => {
          await sql.raw(text).execute(db);
        },
      };
    }
    return migrations;
  }
}

/**
 * Brings the database at `ownerUrl` to the newest migration, as the owner, and returns the names of the
 * migrations it applied (none when it was up to date). Each migration runs in a transaction of its own
 * with its record in the migrations table, so a failing one leaves the database at the one before it.
 * Concurrent runs queue on the migrator's advisory lock.
 */
export async function migrate(ownerUrl: string, dir: string = MIGRATIONS_DIR): Promise<string[]> {
  const db = new Kysely<unknown>({
    dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: ownerUrl, max: 1 }) }),
  });
  const migrator = new Migrator({
    db,
    provider: new SqlFileMigrationProvider(dir),
    migrationTableSchema: MIGRATIONS_SCHEMA,
  });
  const applied: string[] = [];
  try {
    for (;;) {
      // One step per call: migrateToLatest would run every pending migration in one transaction.
      const { error, results = [] } = await migrator.migrateUp();
      const failed = results.find((r) => r.status === "Error");
      if (error || failed) {
        const cause = error instanceof Error ? error.message : String(error);
        throw new Error(`migration ${failed?.migrationName ?? "(setup)"} failed: ${cause}`, { cause: error });
      }
      if (results.length === 0) return applied;
      applied.push(...results.map((r) => r.migrationName));
    }
  } finally {
    await db.destroy();
  }
}

/**
 * The same server and database, logging in as one of the Workers' roles (the migrations create them without
 * a password: local servers use trust auth, the embedded PGlite checks none; production sets passwords).
 */
export function roleUrl(ownerUrl: string, role: DbRole): string {
  const url = new URL(ownerUrl);
  url.username = role;
  url.password = "";
  return url.toString();
}

/** The Cron Worker's role (cross-org, few grants): for scripts that work across orgs. */
export function maintenanceRoleUrl(ownerUrl: string): string {
  return roleUrl(ownerUrl, "layers_maintenance");
}
