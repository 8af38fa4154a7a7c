/**
 * A per-isolate cache of key lookups by the key's SHA-256: keys found and keys unknown, kept apart so a
 * flood of unknown keys can never push out the keys real clients use. Each side holds at most `maxEntries`
 * (the oldest goes first) for its own time-to-live; 0 turns that side off. Found keys are only cached where
 * a stale answer is acceptable for that long (a revocation takes effect within it); unknown keys are cheap
 * to cache: a secret is random, so nobody sends a key before it exists.
 */
export class KeyLookupCache<V> {
  readonly #known: BoundedTtlMap<V>;
  readonly #unknown: BoundedTtlMap<true>;

  constructor(options: { knownTtlMs: number; unknownTtlMs: number; maxEntries?: number }) {
    const maxEntries = options.maxEntries ?? 10_000;
    this.#known = new BoundedTtlMap(options.knownTtlMs, maxEntries);
    this.#unknown = new BoundedTtlMap(options.unknownTtlMs, maxEntries);
  }

  /** The cached answer for this key hash, else `load()`'s, remembered for next time. */
  async lookup(keySha256: string, nowMs: number, load: () => Promise<V | null>): Promise<V | null> {
    if (this.#unknown.get(keySha256, nowMs)) return null;
    const known = this.#known.get(keySha256, nowMs);
    if (known !== undefined) return known;
    return this.refresh(keySha256, nowMs, load);
  }

  /**
   * `load()`'s answer whatever is cached, remembered in place of the cached one: for the uses that must
   * see a revocation at once (the API's changes), which then also ends the stale entry for everyone else.
   */
  async refresh(keySha256: string, nowMs: number, load: () => Promise<V | null>): Promise<V | null> {
    const loaded = await load();
    if (loaded === null) {
      this.#known.delete(keySha256);
      this.#unknown.set(keySha256, true, nowMs);
    } else {
      this.#unknown.delete(keySha256);
      this.#known.set(keySha256, loaded, nowMs);
    }
    return loaded;
  }
}

class BoundedTtlMap<V> {
  readonly #entries = new Map<string, { value: V; expiresAt: number }>();

  constructor(
    private readonly ttlMs: number,
    private readonly maxEntries: number,
  ) {}

  get(key: string, nowMs: number): V | undefined {
    const entry = this.#entries.get(key);
    if (!entry) return undefined;
    if (entry.expiresAt > nowMs) return entry.value;
    this.#entries.delete(key);
    return undefined;
  }

  set(key: string, value: V, nowMs: number): void {
    if (this.ttlMs <= 0) return;
    // Re-inserting moves the key to the end: Map order is insertion order, so the first key is the oldest.
    this.#entries.delete(key);
    if (this.#entries.size >= this.maxEntries) {
      const oldest = this.#entries.keys().next();
      if (!oldest.done) this.#entries.delete(oldest.value);
    }
    this.#entries.set(key, { value, expiresAt: nowMs + this.ttlMs });
  }

  delete(key: string): void {
    this.#entries.delete(key);
  }
}
