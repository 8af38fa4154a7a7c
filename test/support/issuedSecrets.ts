import { appendFileSync, readFileSync } from "node:fs";
import { sql } from "kysely";
import { inject } from "vitest";
import type { Db } from "../../shared/db";
import { allTables, findInTables } from "./scan";

// Every secret the test suite is issued (API keys, SDK keys, destination tokens), written down as the tests
// get them, so that at the end of the run (global-setup.ts) every table is searched for every one of them:
// a secret is shown once and never stored, anywhere, by any path a test took.

/** Notes a secret the suite was issued or sent; empty and non-string values are ignored. */
export function rememberSecret(value: unknown): void {
  if (typeof value !== "string" || value.length < 8) return;
  const file = issuedSecretsFile();
  if (file) appendFileSync(file, `${JSON.stringify(value)}\n`);
}

/** The run's list, or undefined outside a test run (the bench uses the same tenant helpers). */
function issuedSecretsFile(): string | undefined {
  try {
    return inject("issuedSecretsFile");
  } catch {
    return undefined;
  }
}

/** Notes the secrets in an API answer or request body: `secret`, `accessToken` and `secretAccessKey` fields, at any depth. */
export function rememberSecretsIn(json: unknown, depth = 0): void {
  if (json === null || typeof json !== "object" || depth > 6) return;
  for (const [key, value] of Object.entries(json)) {
    if (key === "secret" || key === "accessToken" || key === "secretAccessKey") rememberSecret(value);
    else rememberSecretsIn(value, depth + 1);
  }
}

/** Our key formats (API keys and publishable SDK keys): found by one pattern scan per table. */
const KEY_SECRET = /^lp_(live|test|pk)_[A-Za-z0-9]{32}$/;

/**
 * Where any remembered secret is stored: "table: secret prefix…" per hit. Key secrets are found with one
 * regular-expression scan per table (there are thousands of them); other secrets (tokens) one by one.
 */
export async function issuedSecretsInTables(db: Db, file: string): Promise<string[]> {
  let lines: string[];
  try {
    lines = readFileSync(file, "utf8").split("\n").filter(Boolean);
  } catch {
    return [];
  }
  const secrets = [...new Set(lines.map((l) => JSON.parse(l) as string))];
  const keys = new Set(secrets.filter((s) => KEY_SECRET.test(s)));
  const hits: string[] = [];
  for (const table of await allTables(db)) {
    const { rows } = await sql<{ found: string }>`
      select m[1] as found
      from ${sql.table(table)} as t, regexp_matches(t::text, 'lp_(?:live|test|pk)_[A-Za-z0-9]{32}', 'g') as m
      where t::text ~ 'lp_(live|test|pk)_[A-Za-z0-9]{32}'`.execute(db);
    for (const { found } of rows) if (keys.has(found)) hits.push(`${table}: ${found.slice(0, 12)}…`);
  }
  const others = secrets.filter((s) => !keys.has(s));
  for (const hit of await findInTables(db, others)) hits.push(`${hit.slice(0, hit.indexOf(": ") + 8)}…`);
  return hits;
}
