import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { describe, expect, test } from "vitest";

// The three layers import one way only: workers → functions → shared. A file in shared/ imports nothing
// from functions/ or workers/; a file in functions/ nothing from workers/. This reads every import
// (static, dynamic and `export … from`) of every source file in those folders and names each upward one.

const ROOT = resolve(__dirname, "../..");
const LAYERS = ["shared", "functions", "workers"] as const;
type Layer = (typeof LAYERS)[number];
const RANK: Record<Layer, number> = { shared: 0, functions: 1, workers: 2 };
const IMPORT = /(?:\bfrom\s*|\bimport\s*\(\s*|\bimport\s+)["']([^"']+)["']/g;

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return entry.name === "node_modules" ? [] : sourceFiles(path);
    return /\.(ts|tsx|js|mjs)$/.test(entry.name) ? [path] : [];
  });
}

function layerOf(path: string): Layer | null {
  const top = relative(ROOT, path).split(/[\\/]/)[0];
  return (LAYERS as readonly string[]).includes(top ?? "") ? (top as Layer) : null;
}

/** `from → to` for every relative import of `files` that lands in a higher layer. */
function upwardImports(files: { path: string; text: string }[]): string[] {
  const found: string[] = [];
  for (const { path, text } of files) {
    const from = layerOf(path);
    if (!from) continue;
    for (const match of text.matchAll(IMPORT)) {
      const spec = match[1] ?? "";
      if (!spec.startsWith(".")) continue;
      const to = layerOf(resolve(dirname(path), spec));
      if (to && RANK[to] > RANK[from]) found.push(`${relative(ROOT, path)} → ${spec}`);
    }
  }
  return found;
}

describe("layering: workers → functions → shared, never back", () => {
  test("no file in shared/ or functions/ imports from a layer above it", () => {
    const files = ["shared", "functions"].flatMap((layer) =>
      sourceFiles(join(ROOT, layer)).map((path) => ({ path, text: readFileSync(path, "utf8") })),
    );
    expect(files.length).toBeGreaterThan(50);
    expect(upwardImports(files)).toEqual([]);
  });

  test("the check names an upward import of each kind, and lets downward ones pass", () => {
    const at = (path: string, text: string) => ({ path: join(ROOT, path), text });
    expect(
      upwardImports([
        at("shared/db/x.ts", 'import { a } from "../../functions/projects/store";'),
        at("functions/projects/x.ts", 'export { b } from "../../workers/api/handlers";'),
        at("functions/org/x.ts", 'const m = await import("../../workers/api/app");'),
        at(
          "functions/sdkKeys/x.ts",
          'import type { C } from "../../shared/db";\nimport "../projects/store";',
        ),
        at("workers/api/x.ts", 'import { d } from "../../functions/context";'),
      ]),
    ).toEqual([
      "shared/db/x.ts → ../../functions/projects/store",
      "functions/projects/x.ts → ../../workers/api/handlers",
      "functions/org/x.ts → ../../workers/api/app",
    ]);
  });
});
