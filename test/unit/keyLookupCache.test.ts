import { describe, expect, it } from "vitest";
import { KeyLookupCache } from "../../workers/common/keyLookupCache";

/** A loader that answers from `table` and counts its calls. */
function loader(table: Record<string, string>) {
  const calls: string[] = [];
  return {
    calls,
    load: (key: string) => async () => {
      calls.push(key);
      return table[key] ?? null;
    },
  };
}

describe("KeyLookupCache", () => {
  it("remembers found and unknown keys for their time-to-live, then asks again", async () => {
    const cache = new KeyLookupCache<string>({ knownTtlMs: 1_000, unknownTtlMs: 500 });
    const { calls, load } = loader({ good: "identity" });
    expect(await cache.lookup("good", 0, load("good"))).toBe("identity");
    expect(await cache.lookup("bad", 0, load("bad"))).toBeNull();
    expect(await cache.lookup("good", 999, load("good"))).toBe("identity");
    expect(await cache.lookup("bad", 499, load("bad"))).toBeNull();
    expect(calls).toEqual(["good", "bad"]);
    expect(await cache.lookup("bad", 500, load("bad"))).toBeNull();
    expect(await cache.lookup("good", 1_000, load("good"))).toBe("identity");
    expect(calls).toEqual(["good", "bad", "bad", "good"]);
  });

  it("a time-to-live of 0 turns that side off (the API caches unknown keys only)", async () => {
    const cache = new KeyLookupCache<string>({ knownTtlMs: 0, unknownTtlMs: 5_000 });
    const { calls, load } = loader({ good: "identity" });
    for (let i = 0; i < 3; i++) {
      await cache.lookup("good", i, load("good"));
      await cache.lookup("bad", i, load("bad"));
    }
    expect(calls).toEqual(["good", "bad", "good", "good"]);
  });

  it("a failed lookup is not remembered", async () => {
    const cache = new KeyLookupCache<string>({ knownTtlMs: 1_000, unknownTtlMs: 1_000 });
    await expect(cache.lookup("k", 0, () => Promise.reject(new Error("down")))).rejects.toThrow("down");
    expect(await cache.lookup("k", 1, async () => "identity")).toBe("identity");
  });

  it("is bounded: the oldest entry goes first, and unknown keys never push out known ones", async () => {
    const cache = new KeyLookupCache<string>({ knownTtlMs: 60_000, unknownTtlMs: 60_000, maxEntries: 3 });
    const table = { a: "A", b: "B", c: "C" };
    const { calls, load } = loader(table);
    for (const key of ["a", "b", "c"]) await cache.lookup(key, 0, load(key));
    // A flood of distinct unknown keys fills the unknown side only.
    for (let i = 0; i < 100; i++) await cache.lookup(`unknown-${i}`, 0, load(`unknown-${i}`));
    calls.length = 0;
    for (const key of ["a", "b", "c"]) await cache.lookup(key, 1, load(key));
    expect(calls).toEqual([]);
    // Only the 3 newest unknown keys are still held.
    for (const i of [97, 98, 99, 0]) await cache.lookup(`unknown-${i}`, 1, load(`unknown-${i}`));
    expect(calls).toEqual(["unknown-0"]);
    // A fourth known key evicts the oldest known one.
    (table as Record<string, string>).d = "D";
    await cache.lookup("d", 2, load("d"));
    calls.length = 0;
    for (const key of ["b", "c", "d", "a"]) await cache.lookup(key, 3, load(key));
    expect(calls).toEqual(["a"]);
  });
});
