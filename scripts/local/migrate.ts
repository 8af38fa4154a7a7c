import { readFile } from "node:fs/promises";
import pg from "pg";

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

/** The same server and database, connecting as the application role (RLS applies to it). */
export function appRoleUrl(ownerUrl: string): string {
  return roleUrl(ownerUrl, "layers_app");
}

/** The same server and database, connecting as the Cron Worker's role (cross-org, few grants). */
export function maintenanceRoleUrl(ownerUrl: string): string {
  return roleUrl(ownerUrl, "layers_maintenance");
}

function roleUrl(ownerUrl: string, role: string): string {
  const url = new URL(ownerUrl);
  url.username = role;
  url.password = "";
  return url.toString();
}
