// The seed's storage matrix (cloudlayer's data-handling page), as one rule the API and the workflow share:
//
//   storage          | sync | async
//   true (ours)      | yes  | yes      ← the default
//   { id } (theirs)  | no   | yes
//   false (nothing)  | yes  | no
//
// Every other combination is refused with a message that names the rule. `async` defaults to true.

export type StorageRequest = boolean | { id: string };
export type StorageMode = "cloud" | "own" | "none";

export interface ResolvedStorage {
  mode: StorageMode;
  async: boolean;
  storageConfigId?: string;
}

export class StorageModeError extends Error {
  override readonly name = "StorageModeError";
  readonly code = "storage_mode_not_allowed";
}

export function resolveStorage(storage: StorageRequest = true, isAsync = true): ResolvedStorage {
  if (storage === true) return { mode: "cloud", async: isAsync };
  if (storage === false) {
    if (isAsync) {
      throw new StorageModeError(
        "storage: false keeps nothing, so the result exists only in the synchronous answer: set async: false.",
      );
    }
    return { mode: "none", async: false };
  }
  if (!isAsync) {
    throw new StorageModeError(
      "storage: { id } uploads to your own bucket, which runs asynchronously only: set async: true or leave it out.",
    );
  }
  return { mode: "own", async: true, storageConfigId: storage.id };
}
