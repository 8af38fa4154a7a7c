import { mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { dirname } from "node:path";
import type { LayersStorage } from "./storage.js";

/**
 * Node: the queue and identity in one JSON file, so events survive a restart. Writes go to a temporary file
 * renamed over the old one (a crash mid-write leaves the previous state), one at a time.
 */
export function fileStorage(path: string): LayersStorage {
  let items: Record<string, string> | null = null;
  let writing = Promise.resolve();
  const load = async () => {
    if (items) return items;
    try {
      items = JSON.parse(await readFile(path, "utf8")) as Record<string, string>;
    } catch {
      items = {};
    }
    return items;
  };
  const save = () => {
    writing = writing
      .catch(() => {})
      .then(async () => {
        await mkdir(dirname(path), { recursive: true });
        const tmp = `${path}.${process.pid}.tmp`;
        await writeFile(tmp, JSON.stringify(items));
        await rename(tmp, path);
      });
    return writing;
  };
  return {
    async getItem(key) {
      return Object.hasOwn(await load(), key) ? (items as Record<string, string>)[key]! : null;
    },
    async setItem(key, value) {
      (await load())[key] = value;
      await save();
    },
    async removeItem(key) {
      delete (await load())[key];
      await save();
    },
  };
}
