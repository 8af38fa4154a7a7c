import { createHash } from "node:crypto";
import { readdir, readFile } from "node:fs/promises";
import path from "node:path";
import { expect, test } from "vitest";
import { MIGRATIONS_DIR, SqlFileMigrationProvider } from "../../scripts/local/migrate";

// A migration that a deployed database has run must never change: the database would not run it again, so an
// edit would make it differ from every database created afterwards. checksums.txt (sha256sum's format) pins
// each file; 0001_baseline's line is the sha-256 of the previous release's schema.sql.

async function migrationFiles(): Promise<string[]> {
  return (await readdir(MIGRATIONS_DIR)).filter((f) => f.endsWith(".sql")).sort();
}

test("every migration is pinned by its checksum, and none was edited", async () => {
  const ledger = (await readFile(path.join(MIGRATIONS_DIR, "checksums.txt"), "utf8"))
    .trim()
    .split("\n")
    .map((line) => {
      const [hash, file] = line.split(/\s+/);
      return { file: file!, hash: hash! };
    });
  const files = await migrationFiles();
  expect(ledger.map((l) => l.file)).toEqual(files);
  for (const { file, hash } of ledger) {
    const actual = createHash("sha256")
      .update(await readFile(path.join(MIGRATIONS_DIR, file)))
      .digest("hex");
    expect(actual, `${file} was edited after it was pinned: add a new migration instead`).toBe(hash);
  }
  expect(ledger[0]).toEqual({
    file: "0001_baseline.sql",
    hash: "2ebea71663142bb783a742a402f09f987b467b8f8bc1a63c761ffbe7a99edc63",
  });
});

test("migrations are numbered 0001, 0002, … with no gap, and run in that order", async () => {
  const files = await migrationFiles();
  expect(files.map((f) => f.slice(0, 4))).toEqual(files.map((_, i) => String(i + 1).padStart(4, "0")));
  const names = Object.keys(await new SqlFileMigrationProvider().getMigrations());
  expect(names).toEqual(files.map((f) => f.slice(0, -".sql".length)));
});
