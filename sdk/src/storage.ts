// Where the SDK keeps its queue and identity. One interface for every platform: React Native's AsyncStorage
// fits it as is; browsers get IndexedDB (falling back to localStorage), Node memory or a file (./node).

type MaybePromise<T> = T | Promise<T>;

/** The AsyncStorage interface. Synchronous answers are fine too (localStorage, memory). */
export interface LayersStorage {
  getItem(key: string): MaybePromise<string | null>;
  setItem(key: string, value: string): MaybePromise<void>;
  removeItem(key: string): MaybePromise<void>;
  /**
   * Optional atomic read-modify-write. Without it the SDK reads, then writes: two tabs persisting at the same
   * moment could then lose one's change. The IndexedDB storage implements it in one transaction.
   */
  update?(key: string, change: (value: string | null) => string | null): Promise<void>;
}

export function memoryStorage(): LayersStorage {
  const items = new Map<string, string>();
  return synchronous({
    getItem: (key) => items.get(key) ?? null,
    setItem: (key, value) => void items.set(key, value),
    removeItem: (key) => void items.delete(key),
  });
}

interface WebStorage {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
}

/** A synchronous store's read-modify-write runs in one task: nothing can come between the two. */
function synchronous(store: WebStorage): LayersStorage {
  return {
    getItem: (key) => store.getItem(key),
    setItem: (key, value) => store.setItem(key, value),
    removeItem: (key) => store.removeItem(key),
    update: async (key, change) => {
      const next = change(store.getItem(key));
      if (next === null) store.removeItem(key);
      else store.setItem(key, next);
    },
  };
}

const web = globalThis as unknown as {
  localStorage?: WebStorage;
  indexedDB?: IdbFactory;
};

/** localStorage, or null where it is missing or refused (some private modes throw on access). */
export function localStorageAdapter(): LayersStorage | null {
  try {
    const ls = web.localStorage;
    if (!ls) return null;
    const probe = "layers.probe";
    ls.setItem(probe, "1");
    ls.removeItem(probe);
    return synchronous(ls);
  } catch {
    return null;
  }
}

// The few IndexedDB calls used, typed here so the SDK needs no DOM type library.
interface IdbRequest<T = unknown> {
  result: T;
  error: unknown;
  onsuccess: (() => void) | null;
  onerror: (() => void) | null;
}
interface IdbOpenRequest extends IdbRequest<IdbDatabase> {
  onupgradeneeded: (() => void) | null;
}
interface IdbStore {
  get(key: string): IdbRequest<string | undefined>;
  put(value: string, key: string): IdbRequest;
  delete(key: string): IdbRequest;
}
interface IdbTransaction {
  objectStore(name: string): IdbStore;
  oncomplete: (() => void) | null;
  onerror: (() => void) | null;
  onabort: (() => void) | null;
  error: unknown;
}
interface IdbDatabase {
  createObjectStore(name: string): unknown;
  transaction(store: string, mode: "readonly" | "readwrite"): IdbTransaction;
}
interface IdbFactory {
  open(name: string, version: number): IdbOpenRequest;
}

const STORE = "kv";

/**
 * IndexedDB (one object store of strings), falling back to localStorage, then memory, when IndexedDB is
 * missing or cannot be opened (private modes, blocked storage). Pass `factory` to use another IndexedDB.
 */
export function indexedDbStorage(
  name = "layers",
  factory: IdbFactory | undefined = web.indexedDB,
): LayersStorage {
  const fallback = () => localStorageAdapter() ?? memoryStorage();
  let backend: Promise<IdbDatabase | LayersStorage>;
  const open = () => {
    backend ??= new Promise<IdbDatabase | LayersStorage>((resolve) => {
      if (!factory) return resolve(fallback());
      try {
        const request = factory.open(name, 1);
        request.onupgradeneeded = () => request.result.createObjectStore(STORE);
        request.onsuccess = () => resolve(request.result);
        request.onerror = () => resolve(fallback());
      } catch {
        resolve(fallback());
      }
    });
    return backend;
  };
  const isDb = (b: IdbDatabase | LayersStorage): b is IdbDatabase => "transaction" in b;
  /** Runs `work` in one transaction; resolves with what it returned once the transaction committed. */
  const inTransaction = <T>(
    mode: "readonly" | "readwrite",
    work: (store: IdbStore, done: (v: T) => void) => void,
  ) =>
    open().then(
      (db) =>
        new Promise<T>((resolve, reject) => {
          const tx = (db as IdbDatabase).transaction(STORE, mode);
          let value: T;
          tx.oncomplete = () => resolve(value);
          tx.onerror = tx.onabort = () => reject(tx.error);
          work(tx.objectStore(STORE), (v) => {
            value = v;
          });
        }),
    );
  const update: NonNullable<LayersStorage["update"]> = async (key, change) => {
    const b = await open();
    if (!isDb(b)) {
      const next = change(await b.getItem(key));
      await (next === null ? b.removeItem(key) : b.setItem(key, next));
      return;
    }
    await inTransaction<void>("readwrite", (store) => {
      const read = store.get(key);
      read.onsuccess = () => {
        const next = change(read.result ?? null);
        if (next === null) store.delete(key);
        else store.put(next, key);
      };
    });
  };
  return {
    async getItem(key) {
      const b = await open();
      if (!isDb(b)) return b.getItem(key);
      return inTransaction<string | null>("readonly", (store, done) => {
        const read = store.get(key);
        read.onsuccess = () => done(read.result ?? null);
      });
    },
    setItem: (key, value) => update(key, () => value),
    removeItem: (key) => update(key, () => null),
    update,
  };
}

/** The default: IndexedDB in a browser (then localStorage), memory elsewhere (pass AsyncStorage on React Native). */
export function defaultStorage(): LayersStorage {
  return web.indexedDB ? indexedDbStorage() : (localStorageAdapter() ?? memoryStorage());
}
