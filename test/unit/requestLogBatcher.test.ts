import { describe, expect, it } from "vitest";
import { RequestLogBatcher } from "../../workers/common/requestLogBatcher";

/** A writer that records each batch it is given. */
function recorder() {
  const batches: number[][] = [];
  return { batches, write: async (rows: number[]) => void batches.push(rows) };
}

describe("RequestLogBatcher", () => {
  it("rows added while a write is due share it: one write, and only the first adder waits for it", async () => {
    const { batches, write } = recorder();
    const batcher = new RequestLogBatcher(write, { delayMs: 5, maxRows: 100 });
    const first = batcher.add(1);
    expect(first).toBeInstanceOf(Promise);
    expect(batcher.add(2)).toBeUndefined();
    expect(batcher.add(3)).toBeUndefined();
    expect(batches).toEqual([]);
    await first;
    expect(batches).toEqual([[1, 2, 3]]);

    // A row after that write starts the next batch, with its own write to wait for.
    const next = batcher.add(4);
    expect(next).toBeInstanceOf(Promise);
    await next;
    expect(batches).toEqual([[1, 2, 3], [4]]);
  });

  it("a full batch is written at once, by the request that filled it; nothing is written twice", async () => {
    const { batches, write } = recorder();
    const batcher = new RequestLogBatcher(write, { delayMs: 5, maxRows: 3 });
    const scheduled = batcher.add(1);
    batcher.add(2);
    const full = batcher.add(3);
    expect(full).toBeInstanceOf(Promise);
    await full;
    expect(batches).toEqual([[1, 2, 3]]);
    await scheduled;
    expect(batches).toEqual([[1, 2, 3]]);
  });

  it("a failed write rejects the promise of the request that carries it, and the next batch is written", async () => {
    const written: number[][] = [];
    let fail = true;
    const batcher = new RequestLogBatcher(
      async (rows: number[]) => {
        if (fail) throw new Error("database unavailable");
        written.push(rows);
      },
      { delayMs: 1, maxRows: 10 },
    );
    await expect(batcher.add(1)).rejects.toThrow("database unavailable");
    fail = false;
    await batcher.add(2);
    expect(written).toEqual([[2]]);
  });
});
