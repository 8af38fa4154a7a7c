import type { Tx } from "../../shared/db";
import type { Destination, DestinationKind, Keyring } from "../../shared/destinations";
import { TokenDecryptError } from "../destinations/crypto";
import { toDestination } from "../destinations/store";

// The relay's read of the destinations a queue batch sends to. Each batch still reads the rows (one query
// per org, in the tenant transaction it opens anyway), so a destination switched off or deleted is never
// sent to after the change commits: the bound is zero, not a TTL. What is kept per isolate is only the
// work that does not change with the row's switches: the decrypted token (AES-GCM) and the parsed
// settings, reused while the row's updated_at, key id and ciphertext are the ones they were built from.
// Decrypted tokens live in this Worker's memory only (as they do while a batch is sent); entries expire
// after TOKEN_TTL_MS and the cache holds at most MAX_ENTRIES.

const TOKEN_TTL_MS = 5 * 60_000;
const MAX_ENTRIES = 1_000;

interface Entry {
  /** What the decryption depended on: a change to any of it decrypts again. */
  stamp: string;
  destination: Destination;
  builtAt: number;
}

export class DestinationCache {
  private readonly entries = new Map<string, Entry>();

  constructor(private readonly now: () => number = Date.now) {}

  get(key: string, stamp: string): Destination | undefined {
    const entry = this.entries.get(key);
    if (!entry) return undefined;
    if (entry.stamp !== stamp || this.now() - entry.builtAt > TOKEN_TTL_MS) {
      this.entries.delete(key);
      return undefined;
    }
    return entry.destination;
  }

  set(key: string, stamp: string, destination: Destination): void {
    this.entries.delete(key);
    if (this.entries.size >= MAX_ENTRIES) {
      const oldest = this.entries.keys().next().value;
      if (oldest !== undefined) this.entries.delete(oldest);
    }
    this.entries.set(key, { stamp, destination, builtAt: this.now() });
  }

  delete(key: string): void {
    this.entries.delete(key);
  }

  get size(): number {
    return this.entries.size;
  }
}

export function destinationKey(projectId: string, kind: string): string {
  return `${projectId} ${kind}`;
}

/**
 * The wanted destinations of one org (projectId + kind), as the relay sends to them: null when there is
 * none, a TokenDecryptError when its token cannot be read (that destination's calls alone fail). Runs in
 * the caller's tenant transaction; `enabled` and `status` always come from this read.
 */
export async function loadRelayDestinations(
  tx: Tx,
  wanted: ReadonlyMap<string, { projectId: string; kind: DestinationKind }>,
  keyring: Keyring,
  cache: DestinationCache,
): Promise<Map<string, Destination | null | TokenDecryptError>> {
  const loaded = new Map<string, Destination | null | TokenDecryptError>();
  if (wanted.size === 0) return loaded;
  const projects = [...new Set([...wanted.values()].map((w) => w.projectId))];
  const rows = await tx
    .selectFrom("destinations")
    .select([
      "org_id",
      "project_id",
      "kind",
      "enabled",
      "status",
      "config",
      "token_ciphertext",
      "token_key_id",
      "updated_at",
    ])
    .where("project_id", "in", projects)
    .execute();
  // Projects whose attribution layer was switched off after their events were queued: like a destination
  // switched off, nothing more is sent (read now, with the rows; LAYER_DEFAULTS: no row means on).
  const layerOff = new Set(
    (
      await tx
        .selectFrom("project_layers")
        .select("project_id")
        .where("project_id", "in", projects)
        .where("layer", "=", "attribution")
        .where("enabled", "=", false)
        .execute()
    ).map((r) => r.project_id),
  );
  for (const key of wanted.keys()) loaded.set(key, null);
  for (const row of rows) {
    const key = destinationKey(row.project_id, row.kind);
    if (!wanted.has(key)) continue;
    const stamp = `${row.updated_at.getTime()} ${row.token_key_id ?? ""} ${row.token_ciphertext ?? ""}`;
    // A key taken out of the ring stops its tokens at once, cached or not.
    const keyKnown = row.token_key_id === null || Object.hasOwn(keyring.keys, row.token_key_id);
    let destination = keyKnown ? cache.get(key, stamp) : undefined;
    if (!destination) {
      try {
        destination = await toDestination(row, keyring);
      } catch (error) {
        if (!(error instanceof TokenDecryptError)) throw error;
        cache.delete(key);
        loaded.set(key, error);
        continue;
      }
      cache.set(key, stamp, destination);
    }
    // The switches are the row's, read now: a cached token never outlives its destination being turned off.
    loaded.set(key, {
      ...destination,
      enabled: row.enabled && !layerOff.has(row.project_id),
      status: row.status,
    });
  }
  // Deleted since they were cached: forget the token.
  for (const [key, value] of loaded) if (value === null) cache.delete(key);
  return loaded;
}
