import { auditObjectKey } from "../archive/auditKeys";
import { parseDeadLetterKey } from "../deadLetters/store";
import type { ObjectStore } from "../storage/objectStore";
import type { Scope } from "./catalogue";

/** The buckets the system owns (wrangler vars; test/support/s3.ts SYSTEM_BUCKETS names the same four). */
export interface LifecycleStores {
  /** Cold audit archive: audit/<yyyy>/<mm>/<dd>/<org>.ndjson.gz (functions/archive/auditKeys.ts). */
  archive?: ObjectStore | undefined;
  /** Dead letters: <events|relay>/<yyyy>/<mm>/<dd>/<org>/<project>/<id>.json (functions/deadLetters/store.ts). */
  deadLetters?: ObjectStore | undefined;
  /** Generated media: media/<org>/<project>/<container id>, and staging/<org>/<project>/<job id> (issue 14). */
  media?: ObjectStore | undefined;
  /** Org exports: exports/<org>/… (issue 15's export). */
  exports?: ObjectStore | undefined;
}

export type BucketClass = keyof LifecycleStores;

/**
 * One listing a deletion walks: the keys under `prefix`, of which `matches` picks the scope's. Media and
 * exports are laid out by org (and project), so their prefix is the scope and every key matches; the audit
 * archive and dead letters are laid out by day first (their expiry is one listing), so the deletion walks
 * the whole kind and picks the scope's keys by the org (and project) segment.
 */
export interface ObjectSweep {
  /** Stable name: the receipt's count class and the resume cursor's key. */
  name: string;
  bucket: BucketClass;
  prefix: string;
  matches(key: string): boolean;
}

export function objectSweeps(scope: Scope): ObjectSweep[] {
  const org = scope.orgId;
  const all = () => true;
  const sweeps: ObjectSweep[] = [];
  // Generated media and the staging copies of jobs writing to a partner's bucket (functions/content/jobs).
  const scoped = scope.kind === "project" ? `${org}/${scope.projectId}/` : `${org}/`;
  sweeps.push({ name: "objects:media", bucket: "media", prefix: `media/${scoped}`, matches: all });
  sweeps.push({ name: "objects:staging", bucket: "media", prefix: `staging/${scoped}`, matches: all });
  if (scope.kind === "org") {
    sweeps.push({ name: "objects:exports", bucket: "exports", prefix: `exports/${org}/`, matches: all });
    // The org's archive objects are audit/<day>/<org>.ndjson.gz: the file name is the org's.
    const fileName = auditObjectKey(org, "2000-01-01").slice("audit/2000/01/01/".length);
    sweeps.push({
      name: "objects:archive",
      bucket: "archive",
      prefix: "audit/",
      matches: (key) => key.endsWith(`/${fileName}`),
    });
  }
  for (const kind of ["events", "relay"] as const) {
    sweeps.push({
      name: `objects:dead_letters:${kind}`,
      bucket: "deadLetters",
      prefix: `${kind}/`,
      matches: (key) => {
        const parts = parseDeadLetterKey(key);
        if (!parts || parts.orgId !== org) return false;
        return scope.kind === "org" || parts.projectId === scope.projectId;
      },
    });
  }
  return sweeps;
}

/** Deletes every key under `prefix`, a listing page at a time, in bulk requests; throws on the first failure. */
export async function deletePrefix(store: ObjectStore, prefix: string): Promise<void> {
  for (;;) {
    const page = await store.list(prefix);
    if (page.keys.length === 0) return;
    await deleteKeys(store, page.keys);
  }
}

/** Deletes `keys` in bulk requests of up to 1,000 (S3 DeleteObjects); throws on the first failure. */
export async function deleteKeys(store: ObjectStore, keys: string[]): Promise<void> {
  for (let start = 0; start < keys.length; start += 1_000) {
    await store.deleteMany(keys.slice(start, start + 1_000));
  }
}
