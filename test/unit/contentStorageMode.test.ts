import { expect, test } from "vitest";
import { resolveStorage, StorageModeError } from "../../functions/content/storageMode";

// The seed's matrix exactly: cloud storage sync or async (the default), own storage async only, no storage
// sync only; every other combination refused with a message that names the rule.

function refused(run: () => unknown) {
  try {
    run();
    return null;
  } catch (e) {
    return e instanceof StorageModeError ? { code: e.code, message: e.message } : e;
  }
}

test("the allowed combinations", () => {
  expect(resolveStorage()).toEqual({ mode: "cloud", async: true });
  expect(resolveStorage(true, false)).toEqual({ mode: "cloud", async: false });
  expect(resolveStorage({ id: "stc_1" })).toEqual({ mode: "own", async: true, storageConfigId: "stc_1" });
  expect(resolveStorage(false, false)).toEqual({ mode: "none", async: false });
});

test("own storage synchronously, and no storage asynchronously (also by default), are refused by name", () => {
  expect(refused(() => resolveStorage({ id: "stc_1" }, false))).toEqual({
    code: "storage_mode_not_allowed",
    message: expect.stringContaining("asynchronously only"),
  });
  for (const run of [() => resolveStorage(false), () => resolveStorage(false, true)]) {
    expect(refused(run)).toEqual({
      code: "storage_mode_not_allowed",
      message: expect.stringContaining("only in the synchronous answer"),
    });
  }
});
