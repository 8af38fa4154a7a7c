import { type RawBuilder, sql } from "kysely";
import type { Db } from "../../shared/db";

/**
 * What a project or org deletion erases, read from the database catalogue rather than listed by hand: a
 * table added later is erased (or the completeness test says why not) without anyone editing this file.
 *
 * - org scope: every table with an `org_id` column, every table reachable from one by a foreign key, and
 *   the org's `organizations` row last;
 * - project scope: every table with a `project_id` column, every table whose foreign key points at one
 *   (webhook deliveries and attempts, ads-content links), and the `projects` row last.
 *
 * Steps come children first (pg_constraint's foreign keys, topologically sorted), so no ON DELETE CASCADE
 * ever removes rows behind the receipt's back and no ON DELETE SET NULL rewrites a row about to go.
 */
export type Scope = { kind: "org"; orgId: string } | { kind: "project"; orgId: string; projectId: string };

/**
 * Tables a deletion of each kind never erases: its own receipts. An org deletion clears its org id on
 * completion instead; a project deletion's row stays with the org (and goes with the org's deletion).
 */
export const RECEIPT_TABLES = {
  org: ["org_deletions"],
  project: ["org_deletions", "project_deletions"],
} as const;

export interface CatalogueTable {
  name: string;
  hasOrgId: boolean;
  hasProjectId: boolean;
  /** project_id declared NOT NULL: every row belongs to one project. */
  projectIdRequired: boolean;
}

export interface ForeignKey {
  child: string;
  childColumns: string[];
  parent: string;
  parentColumns: string[];
}

export interface Catalogue {
  tables: CatalogueTable[];
  foreignKeys: ForeignKey[];
}

export async function readCatalogue(db: Db): Promise<Catalogue> {
  const { rows: tables } = await sql<{
    name: string;
    has_org_id: boolean;
    has_project_id: boolean;
    project_id_required: boolean;
  }>`
    select c.relname as name,
      exists (select 1 from pg_attribute a where a.attrelid = c.oid and a.attname = 'org_id'
              and not a.attisdropped) as has_org_id,
      exists (select 1 from pg_attribute a where a.attrelid = c.oid and a.attname = 'project_id'
              and not a.attisdropped) as has_project_id,
      exists (select 1 from pg_attribute a where a.attrelid = c.oid and a.attname = 'project_id'
              and not a.attisdropped and a.attnotnull) as project_id_required
    from pg_class c
    where c.relnamespace = 'public'::regnamespace and c.relkind in ('r', 'p') and not c.relispartition
    order by c.relname`.execute(db);
  const { rows: keys } = await sql<{
    child: string;
    child_columns: string[];
    parent: string;
    parent_columns: string[];
  }>`
    select ch.relname as child, pa.relname as parent,
      array(select a.attname::text from unnest(k.conkey) with ordinality u(n, i)
            join pg_attribute a on a.attrelid = k.conrelid and a.attnum = u.n order by u.i) as child_columns,
      array(select a.attname::text from unnest(k.confkey) with ordinality u(n, i)
            join pg_attribute a on a.attrelid = k.confrelid and a.attnum = u.n order by u.i) as parent_columns
    from pg_constraint k
    join pg_class ch on ch.oid = k.conrelid
    join pg_class pa on pa.oid = k.confrelid
    where k.contype = 'f' and ch.relnamespace = 'public'::regnamespace
    order by ch.relname, k.conname`.execute(db);
  return {
    tables: tables.map((t) => ({
      name: t.name,
      hasOrgId: t.has_org_id,
      hasProjectId: t.has_project_id,
      projectIdRequired: t.project_id_required,
    })),
    foreignKeys: keys.map((k) => ({
      child: k.child,
      childColumns: k.child_columns,
      parent: k.parent,
      parentColumns: k.parent_columns,
    })),
  };
}

/** One table's share of a deletion: which of its rows belong to the scope. */
export interface Step {
  table: string;
  where: RawBuilder<boolean>;
}

const ROOT = { org: "organizations", project: "projects" } as const;

/**
 * The tables a scope erases, children first, each with the predicate that picks the scope's rows (one an
 * index answers: project-scoped tables by project id, which leads their indexes). Tables the catalogue
 * holds that the scope cannot reach are in `uncovered` (the completeness test requires it empty for org).
 */
export function planSteps(catalogue: Catalogue, scope: Scope): { steps: Step[]; uncovered: string[] } {
  const byName = new Map(catalogue.tables.map((t) => [t.name, t]));
  const skip = new Set<string>(RECEIPT_TABLES[scope.kind]);
  const root = ROOT[scope.kind];
  const direct = new Map<string, RawBuilder<boolean>>();
  const orgProjects = sql`array(select id from projects where org_id = ${scope.orgId})`;
  for (const t of catalogue.tables) {
    if (skip.has(t.name) || t.name === root) continue;
    if (scope.kind === "project") {
      if (!t.hasProjectId) continue;
      direct.set(
        t.name,
        t.hasOrgId
          ? sql<boolean>`org_id = ${scope.orgId} and project_id = ${scope.projectId}`
          : sql<boolean>`project_id = ${scope.projectId}`,
      );
    } else if (t.hasOrgId) {
      // A table whose every row is in a project of the org (project_id NOT NULL, a foreign key to
      // projects) is searched through its project index (sdk_events has no org index); any other by org_id.
      const inProjects =
        t.projectIdRequired &&
        catalogue.foreignKeys.some(
          (fk) => fk.child === t.name && fk.parent === "projects" && fk.childColumns.join() === "project_id",
        );
      direct.set(
        t.name,
        inProjects
          ? sql<boolean>`project_id = any(${orgProjects}) and org_id = ${scope.orgId}`
          : sql<boolean>`org_id = ${scope.orgId}`,
      );
    }
  }
  // Tables without the scope's column: reached through a foreign key to a table in scope (repeat until
  // nothing new is reached, for chains).
  const viaKey = new Map<string, ForeignKey[]>();
  for (let changed = true; changed; ) {
    changed = false;
    for (const fk of catalogue.foreignKeys) {
      if (skip.has(fk.child) || fk.child === root || direct.has(fk.child)) continue;
      if (!(direct.has(fk.parent) || viaKey.has(fk.parent) || fk.parent === root)) continue;
      const list = viaKey.get(fk.child) ?? [];
      if (list.includes(fk)) continue;
      list.push(fk);
      viaKey.set(fk.child, list);
      changed = true;
    }
  }
  const predicateOf = (name: string): RawBuilder<boolean> => {
    const d = direct.get(name);
    if (d) return d;
    if (name === root) {
      return scope.kind === "org" ? sql<boolean>`id = ${scope.orgId}` : sql<boolean>`id = ${scope.projectId}`;
    }
    const arms = (viaKey.get(name) ?? []).map((fk) => {
      const cols = sql.join(fk.childColumns.map((c) => sql.ref(c)));
      const parentCols = sql.join(fk.parentColumns.map((c) => sql.ref(`p.${c}`)));
      return sql`(${cols}) in (select ${parentCols} from ${sql.table(fk.parent)} p where ${predicateOf(fk.parent)})`;
    });
    return sql<boolean>`(${sql.join(arms, sql` or `)})`;
  };
  const inScope = [...direct.keys(), ...viaKey.keys(), root];
  const order = childrenFirst(inScope, catalogue.foreignKeys);
  const covered = new Set(inScope);
  const uncovered = catalogue.tables
    .map((t) => t.name)
    .filter((name) => !covered.has(name) && !skip.has(name) && byName.has(name));
  return { steps: order.map((table) => ({ table, where: predicateOf(table) })), uncovered };
}

/** A topological order of `tables` in which every referencing table comes before the table it references. */
function childrenFirst(tables: string[], keys: ForeignKey[]): string[] {
  const set = new Set(tables);
  const parentsOf = new Map<string, Set<string>>(tables.map((t) => [t, new Set()]));
  for (const fk of keys) {
    if (set.has(fk.child) && set.has(fk.parent) && fk.child !== fk.parent) {
      parentsOf.get(fk.child)?.add(fk.parent);
    }
  }
  // A table may go once nothing left references it.
  const out: string[] = [];
  const left = new Set([...tables].sort());
  while (left.size > 0) {
    const next = [...left].find(
      (t) => ![...left].some((other) => other !== t && parentsOf.get(other)?.has(t)),
    );
    if (next === undefined) throw new Error(`foreign keys form a cycle among: ${[...left].join(", ")}`);
    out.push(next);
    left.delete(next);
  }
  return out;
}
