import type { OpenAPIHono } from "@hono/zod-openapi";
import swaggerUiPackage from "swagger-ui-dist/package.json";
import swaggerUiCss from "swagger-ui-dist/swagger-ui.css";
import swaggerUiBundle from "swagger-ui-dist/swagger-ui-bundle.js";
import type { ApiEnv } from "./context";

// The API reference at /docs, rendered by Swagger UI from /v1/openapi.json. Partners paste API keys into
// this page, so it loads nothing from anywhere else: the renderer's files (swagger-ui-dist, pinned to one
// version by the lockfile) are bundled into this Worker as text modules (workers/api/wrangler.toml [[rules]])
// and served from here, and the page's Content-Security-Policy allows only this origin.

const VERSION = swaggerUiPackage.version;
/** The renderer's version is in its files' paths, so they can be cached for a year: a new version is a new URL. */
export const DOCS_ASSETS = {
  script: `/docs/assets/swagger-ui-bundle-${VERSION}.js`,
  style: `/docs/assets/swagger-ui-${VERSION}.css`,
  init: "/docs/assets/init.js",
} as const;

const IMMUTABLE = "public, max-age=31536000, immutable";
/** Ours, and it may change without a new renderer version: revalidated on every load. */
const REVALIDATE = "no-cache";

// Its own file rather than an inline script, so the page's policy needs no 'unsafe-inline'. No validator
// badge (it would call validator.swagger.io); authorization is not persisted, so a pasted key is never
// written to the browser's storage.
const INIT = `var root = document.getElementById("swagger-ui");
window.ui = SwaggerUIBundle({
  url: root.dataset.specUrl,
  dom_id: "#swagger-ui",
  deepLinking: true,
  validatorUrl: null,
  persistAuthorization: false,
});
`;

const PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Layers partner API</title>
<link rel="stylesheet" href="${DOCS_ASSETS.style}">
</head>
<body>
<div id="swagger-ui" data-spec-url="/v1/openapi.json"></div>
<script src="${DOCS_ASSETS.script}"></script>
<script src="${DOCS_ASSETS.init}"></script>
</body>
</html>
`;

export function registerDocsRoutes(app: OpenAPIHono<ApiEnv>) {
  app.get("/docs", (c) => c.html(PAGE, 200, { "Cache-Control": REVALIDATE }));
  const assets: [string, string, string][] = [
    [DOCS_ASSETS.script, swaggerUiBundle, "text/javascript; charset=utf-8"],
    [DOCS_ASSETS.style, swaggerUiCss, "text/css; charset=utf-8"],
    [DOCS_ASSETS.init, INIT, "text/javascript; charset=utf-8"],
  ];
  for (const [path, body, type] of assets) {
    const cache = path === DOCS_ASSETS.init ? REVALIDATE : IMMUTABLE;
    app.get(path, (c) => c.body(body, 200, { "Content-Type": type, "Cache-Control": cache }));
  }
}
