import { readFile } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import path from "node:path";
import { build } from "esbuild";
import { ROOT } from "./bundle";

const PAGE = path.join(ROOT, "sdk/example/index.html");

/**
 * `npm run dev`'s example page: sdk/example/index.html at /example/ with the local ingest and the demo SDK
 * key filled in, and the SDK's <script> bundle at /example/layers.min.js, built from sdk/src on each request
 * (so an edit shows on reload; sdk/build.ts builds the published file the same way). Its own port, so the
 * page's origin is not the ingest's and the browser does CORS exactly as on a partner's site.
 */
export function startExampleSite(options: {
  port: number;
  ingestOrigin: string;
  sdkKey: string;
}): Promise<Server> {
  const server = createServer((req, res) => {
    const pathname = new URL(req.url ?? "/", "http://example").pathname;
    const answer = async () => {
      if (pathname === "/" || pathname === "/example") {
        res.writeHead(302, { Location: "/example/" }).end();
      } else if (pathname === "/example/" || pathname === "/example/index.html") {
        const page = (await readFile(PAGE, "utf8"))
          .replaceAll("__LAYERS_SDK_KEY__", options.sdkKey)
          .replaceAll("__LAYERS_INGEST__", options.ingestOrigin);
        res
          .writeHead(200, { "Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-store" })
          .end(page);
      } else if (pathname === "/example/layers.min.js") {
        const bundle = await build({
          entryPoints: [path.join(ROOT, "sdk/src/index.ts")],
          bundle: true,
          minify: true,
          format: "iife",
          globalName: "Layers",
          platform: "browser",
          target: "es2020",
          write: false,
          logLevel: "silent",
        });
        res
          .writeHead(200, { "Content-Type": "text/javascript; charset=utf-8", "Cache-Control": "no-store" })
          .end(bundle.outputFiles[0]!.contents);
      } else {
        res.writeHead(404, { "Content-Type": "text/plain" }).end("The example page is at /example/\n");
      }
    };
    answer().catch((error) => {
      console.error("example page:", error);
      if (!res.headersSent) res.writeHead(500, { "Content-Type": "text/plain" }).end(String(error));
    });
  });
  return new Promise((resolve) => server.listen(options.port, "127.0.0.1", () => resolve(server)));
}
