import { readFile } from "node:fs/promises";
import path from "node:path";
import { build, type Plugin } from "esbuild";

export const ROOT = path.resolve(import.meta.dirname, "../..");

/**
 * Files a Worker imports as text, as its wrangler.toml `[[rules]] type = "Text"` declares them (wrangler
 * uploads them as text modules; here they are inlined as the same string).
 */
const TEXT_MODULES = /(^|\/)swagger-ui-dist\/(swagger-ui-bundle\.js|swagger-ui\.css)$/;

const textModules: Plugin = {
  name: "text-modules",
  setup(b) {
    b.onLoad({ filter: TEXT_MODULES }, async (args) => ({
      contents: await readFile(args.path, "utf8"),
      loader: "text",
    }));
  },
};

/**
 * Bundles a Worker the way `wrangler deploy` does (esbuild, ESM, workerd conditions), so tests and
 * `npm run dev` run the same code that ships. Output goes under .wrangler/<dir>/<pid>/ (git-ignored), one
 * folder per process so two runs at once never swap each other's bundles.
 */
export async function bundleWorker(entry: string, name: string, dir = "test-build"): Promise<string> {
  const outfile = path.join(ROOT, ".wrangler", dir, String(process.pid), `${name}.js`);
  await build({
    entryPoints: [path.join(ROOT, entry)],
    outfile,
    bundle: true,
    format: "esm",
    target: "es2022",
    // wrangler leaves esbuild's platform at its default, "browser": that is what applies packages'
    // `browser` field maps (@aws-sdk/client-s3 swaps its Node runtime config for the fetch-based one).
    platform: "browser",
    conditions: ["workerd", "worker", "browser"],
    mainFields: ["browser", "module", "main"],
    logLevel: "silent",
    // Node built-ins stay imports, as wrangler leaves them for a Worker with nodejs_compat (workerd provides
    // them); a Worker without the flag that imported one would fail to load, in tests as in production.
    external: ["cloudflare:*", "node:*"],
    plugins: [textModules],
    // As the wrangler.toml [alias] of the Workers that use S3: the S3 SDK's XML parser without DOMParser (not in workerd).
    alias: { "@aws-sdk/xml-builder": path.join(ROOT, "functions/storage/xmlParser.ts") },
  });
  return outfile;
}
