import { Kysely, PostgresDialect } from "kysely";
import pg from "pg";
import { type Database, type Db, type DbRole, roleOfUrl, setTenantRole } from "../../shared/db";

/**
 * The same Kysely<Database> the Workers use, over node-postgres instead of the Neon driver, for
 * Node-side tooling (seed, tests, bench) that talks TCP to the local Postgres directly. Tenant transactions
 * run as `role` (default: the role the URL logs in as; none for the owner).
 */
export function createNodeDb(url: string, max = 4, role: DbRole | undefined = roleOfUrl(url)): Db {
  const db = new Kysely<Database>({
    dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: url, max }) }),
  });
  return setTenantRole(db, role);
}
