import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { MIGRATIONS_SCHEMA } from "./migrate";

/**
 * The database's schema as pg_dump writes it (no data, no owners; grants kept, since they are part of the
 * design), without what changes from one run to the next: the header naming the server and client versions,
 * the session SET lines and the random \restrict key. The migrator's own bookkeeping schema is left out.
 * pg_dump must be of the server's major version (/usr/bin/pg_dump here; PG_DUMP names another).
 */
export async function dumpSchema(url: string): Promise<string> {
  const { stdout } = await promisify(execFile)(
    process.env.PG_DUMP ?? "pg_dump",
    ["--schema-only", "--no-owner", `--exclude-schema=${MIGRATIONS_SCHEMA}`, url],
    { maxBuffer: 64 * 1024 * 1024 },
  );
  return normalizeDump(stdout);
}

export function normalizeDump(dump: string): string {
  const firstObject = dump.indexOf("--\n-- Name: ");
  const end = dump.indexOf("--\n-- PostgreSQL database dump complete");
  const body = dump.slice(firstObject === -1 ? 0 : firstObject, end === -1 ? undefined : end);
  return `${body
    .split("\n")
    .filter((line) => !/^(SET |SELECT pg_catalog\.set_config\(|\\(un)?restrict )/.test(line))
    .join("\n")
    .replace(/\n{3,}/g, "\n\n")
    .trim()}\n`;
}
