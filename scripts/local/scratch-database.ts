import { randomBytes } from "node:crypto";
import pg from "pg";

export interface ScratchDatabase {
  /** Owner connection string of the new, empty database. */
  url: string;
  drop(): Promise<void>;
}

/**
 * The Postgres server tooling creates throwaway databases on: the one in TEST_DATABASE_URL (as in CI), else
 * the machine's local server. Needs a real server (pg_dump and CREATE DATABASE), not the embedded PGlite.
 */
export function scratchServerUrl(): string {
  return process.env.TEST_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";
}

/**
 * An empty database on the server of `serverUrl`, named after that URL's database (so a test run's scratch
 * databases are recognisable as its own; "layers_scratch" for the server's default database) plus `purpose`
 * and a random suffix. Drop it when done.
 */
export async function createScratchDatabase(serverUrl: string, purpose: string): Promise<ScratchDatabase> {
  const database = decodeURIComponent(new URL(serverUrl).pathname.slice(1));
  const base = database === "postgres" ? "layers_scratch" : database;
  const name = `${base}_${purpose}_${randomBytes(4).toString("hex")}`
    .toLowerCase()
    .replace(/[^a-z0-9_]/g, "_");
  if (name.length > 63) throw new Error(`scratch database name too long for Postgres: ${name}`);
  await onServer(serverUrl, `create database ${name}`);
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    drop: () => onServer(serverUrl, `drop database if exists ${name} with (force)`),
  };
}

async function onServer(serverUrl: string, statement: string): Promise<void> {
  const client = new pg.Client({ connectionString: serverUrl });
  await client.connect();
  try {
    await client.query(statement);
  } finally {
    await client.end();
  }
}
