// npm run db:migrate: applies the migrations in shared/db/migrations that DATABASE_URL's database has not
// run yet (each in a transaction of its own, recorded in layers_migrations.kysely_migration), or to the
// embedded database under .data/pg when DATABASE_URL is unset. Run it with the owner role, not a Worker
// role. A database that is up to date is left as it is.
import { mkdir } from "node:fs/promises";
import path from "node:path";
import { startEmbeddedPostgres } from "./local/embedded-postgres";
import { migrate } from "./local/migrate";

const url = process.env.DATABASE_URL;
const target = url ? "DATABASE_URL" : ".data/pg (embedded)";
let applied: string[];
if (url) {
  applied = await migrate(url);
} else {
  const dataDir = path.resolve(import.meta.dirname, "..", ".data", "pg");
  await mkdir(dataDir, { recursive: true });
  const embedded = await startEmbeddedPostgres({ dataDir });
  try {
    applied = await migrate(embedded.url);
  } finally {
    await embedded.stop();
  }
}
console.log(
  applied.length === 0
    ? `${target} is up to date`
    : `applied to ${target}:\n${applied.map((name) => `  ${name}`).join("\n")}`,
);
