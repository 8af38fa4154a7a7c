/**
 * How many test files run at once: two against a Postgres server (each vitest worker on a database of its
 * own, test/support/global-setup.ts), one against the embedded PGlite (a single database). Two cores: a
 * third worker only adds contention.
 */
export const TEST_WORKERS = process.env.TEST_DATABASE_URL ? 2 : 1;
