import { Kysely, PostgresDialect } from "kysely";
import pg from "pg";
import type { Db } from "../../shared/db";
import type { Database } from "../../shared/db/types";

/**
 * The same Kysely<Database> the Workers use, over node-postgres instead of the Neon driver, for
 * Node-side tooling (seed, tests, bench) that talks TCP to the local Postgres directly.
 */
export function createNodeDb(url: string, max = 4): Db {
  return new Kysely<Database>({
    dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: url, max }) }),
  });
}
