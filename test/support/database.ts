import { inject } from "vitest";

/**
 * The owner URL of the database this test file runs against. Test files run two at a time against the
 * Postgres server (one per vitest worker, vitest.config.ts), and each worker has a database of its own
 * (test/support/global-setup.ts): a Cron run with a clock years ahead, or a scan of every table, in one
 * file never sees the rows another file is writing at the same moment.
 */
export function testDatabaseUrl(): string {
  const urls = inject("ownerUrls");
  // VITEST_POOL_ID numbers the workers from 1; a worker keeps its number (and database) for the whole run.
  const worker = Number(process.env.VITEST_POOL_ID ?? "1");
  return urls[(worker - 1) % urls.length] as string;
}
