import { sql } from "kysely";
import { decodeNdjsonGz } from "../../functions/archive/ndjson";
import type { ObjectStore } from "../../functions/storage/objectStore";
import type { Db } from "../../shared/db";

/** Every base table of the public schema: a scan that walks this list cannot miss a table added later. */
export async function allTables(db: Db): Promise<string[]> {
  const { rows } = await sql<{ table_name: string }>`
    select table_name from information_schema.tables
    where table_schema = 'public' and table_type = 'BASE TABLE' order by table_name`.execute(db);
  return rows.map((r) => r.table_name);
}

/**
 * Which of `needles` appear anywhere in any row of any table (every column, cast to text, case-insensitive).
 * Returns "table: needle" for each hit; an empty list means none of them is stored anywhere.
 */
export async function findInTables(db: Db, needles: string[]): Promise<string[]> {
  const wanted = [...new Set(needles.filter((n) => n.length > 0))];
  if (wanted.length === 0) return [];
  const hits: string[] = [];
  for (const table of await allTables(db)) {
    const { rows } = await sql<{ needle: string }>`
      select n.needle from unnest(${wanted}::text[]) as n(needle)
      where exists (
        select 1 from ${sql.table(table)} as t
        where strpos(lower(t::text), lower(n.needle)) > 0
      )`.execute(db);
    for (const { needle } of rows) hits.push(`${table}: ${needle}`);
  }
  return hits;
}

/** Every object's text in `store` (all of them: test buckets are small). */
export async function objectTexts(store: ObjectStore): Promise<{ key: string; text: string }[]> {
  const out: { key: string; text: string }[] = [];
  let after: string | undefined;
  for (;;) {
    const page = await store.list("", after ? { after } : {});
    for (const key of page.keys) {
      const bytes = await store.get(key);
      if (bytes === undefined) continue;
      // Archives are gzip NDJSON: read them as they would be read back.
      const text = key.endsWith(".gz")
        ? (await decodeNdjsonGz(bytes)).map((r) => JSON.stringify(r)).join("\n")
        : new TextDecoder().decode(bytes);
      out.push({ key, text });
    }
    if (!page.next) return out;
    after = page.next;
  }
}
