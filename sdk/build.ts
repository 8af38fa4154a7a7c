// Builds the package: ESM and CJS for bundlers and Node, one minified IIFE for a <script> tag (global
// `Layers`), and the .d.ts files from tsc. `npm run build -w sdk`.
import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const root = dirname(fileURLToPath(import.meta.url));
const dist = join(root, "dist");
rmSync(dist, { recursive: true, force: true });

const entryPoints = [join(root, "src/index.ts"), join(root, "src/node.ts")];
const common = { bundle: true, target: "es2020", external: ["node:*"], logLevel: "warning" as const };
await build({ ...common, entryPoints, outdir: dist, format: "esm", platform: "neutral" });
await build({
  ...common,
  entryPoints,
  outdir: dist,
  format: "cjs",
  platform: "node",
  outExtension: { ".js": ".cjs" },
});
await build({
  ...common,
  entryPoints: [join(root, "src/index.ts")],
  outfile: join(dist, "layers.min.js"),
  format: "iife",
  globalName: "Layers",
  platform: "browser",
  minify: true,
});

const tsc = join(root, "../node_modules/typescript/bin/tsc");
execFileSync(process.execPath, [tsc, "-p", join(root, "tsconfig.json")], { stdio: "inherit" });
execFileSync(process.execPath, [tsc, "-p", join(root, "tsconfig.node.json")], { stdio: "inherit" });

// CommonJS consumers (moduleResolution node16/nodenext) need declarations that say CommonJS: the same
// files as .d.cts, importing each other as .cjs.
const types = join(dist, "types");
for (const file of readdirSync(types).filter((f) => f.endsWith(".d.ts"))) {
  const text = readFileSync(join(types, file), "utf8").replace(/from "(\.\/[a-z]+)\.js"/g, 'from "$1.cjs"');
  writeFileSync(join(types, file.replace(/\.d\.ts$/, ".d.cts")), text);
}
