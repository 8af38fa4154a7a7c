// npm run db:migrate: applies schema.sql (idempotent) to DATABASE_URL, or to the embedded database
// under .data/pg when DATABASE_URL is unset. Run it with the owner role, not a Worker role.
import { mkdir } from "node:fs/promises";
import path from "node:path";
import { startEmbeddedPostgres } from "./local/embedded-postgres";
import { migrate } from "./local/migrate";

const url = process.env.DATABASE_URL;
if (url) {
  await migrate(url);
} else {
  const dataDir = path.resolve(import.meta.dirname, "..", ".data", "pg");
  await mkdir(dataDir, { recursive: true });
  const embedded = await startEmbeddedPostgres({ dataDir });
  await migrate(embedded.url);
  await embedded.stop();
}
console.log(`schema.sql applied to ${url ? "DATABASE_URL" : ".data/pg (embedded)"}`);
