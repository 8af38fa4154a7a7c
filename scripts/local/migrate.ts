import { readFile } from "node:fs/promises";
import pg from "pg";
import type { DbRole } from "../../shared/db";

const SCHEMA = new URL("../../schema.sql", import.meta.url);

/** Applies schema.sql as the owner. Safe to run on an existing database: every statement is idempotent. */
export async function migrate(ownerUrl: string): Promise<void> {
  const sql = await readFile(SCHEMA, "utf8");
  const client = new pg.Client({ connectionString: ownerUrl });
  await client.connect();
  try {
    // Quiet the "already exists, skipping" notices of a re-run.
    await client.query("set client_min_messages = warning");
    await client.query(sql);
  } finally {
    await client.end();
  }
}

/**
 * The same server and database, logging in as one of the Workers' roles (schema.sql creates them without a
 * password: local servers use trust auth, the embedded PGlite checks none; production sets passwords).
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
