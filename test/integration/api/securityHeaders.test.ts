import { readFile } from "node:fs/promises";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { ROOT } from "../../../scripts/local/bundle";
import { DOCS_ASSETS } from "../../../workers/api/docs";
import { bearer, createApiTenant } from "../../support/apiTenant";
import { type Stack, startStack } from "../../support/stack";

// Every answer of the partner API carries the secure headers and a Content-Security-Policy; /docs, where
// partners paste API keys, loads its renderer from this Worker only (the version the lockfile pins) and
// its policy names no other origin.

let stack: Stack;
beforeAll(async () => {
  stack = await startStack({ consumer: "recorder", apiVars: { API_RATE_LIMIT_PER_MINUTE: "2" } });
});
afterAll(() => stack?.dispose());

const JSON_POLICY = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

/** A Content-Security-Policy as directive → sources. */
function policy(header: string | null): Map<string, string[]> {
  expect(header, "Content-Security-Policy").not.toBeNull();
  return new Map(
    header!
      .split(";")
      .map((d) => d.trim().split(/\s+/))
      .filter((parts) => parts[0])
      .map(([name, ...sources]) => [name!, sources]),
  );
}

function expectSecureHeaders(response: Response, label: string) {
  const h = (name: string) => response.headers.get(name);
  expect(h("X-Content-Type-Options"), label).toBe("nosniff");
  expect(h("Strict-Transport-Security"), label).toMatch(/^max-age=\d{7,}; includeSubDomains$/);
  expect(h("Referrer-Policy"), label).toBe("no-referrer");
  expect(h("X-Frame-Options"), label).toBe("DENY");
  expect(h("Cross-Origin-Resource-Policy"), label).toBe("same-origin");
  expect(h("Cross-Origin-Opener-Policy"), label).toBe("same-origin");
  expect(h("X-Permitted-Cross-Domain-Policies"), label).toBe("none");
  expect(policy(h("Content-Security-Policy")).get("frame-ancestors"), label).toEqual(["'none'"]);
}

describe("secure headers on every answer", () => {
  test("success, every error class, the OpenAPI document and the docs files", async () => {
    // A fresh key per call: the limit in this file is 2 a minute, so the 429 is easy to reach.
    const key = async () => (await createApiTenant(stack.db)).secret;
    const post = async (body: unknown) => ({
      method: "POST",
      headers: bearer(await key()),
      body: JSON.stringify(body),
    });
    const limited = await key();
    const answers: [string, number, () => Promise<Response>][] = [
      ["200 list", 200, async () => stack.api("/v1/projects", { headers: bearer(await key()) })],
      ["201 create", 201, async () => stack.api("/v1/projects", await post({ name: "Headers" }))],
      ["200 OpenAPI document", 200, () => stack.api("/v1/openapi.json")],
      ["400 invalid body", 400, async () => stack.api("/v1/projects", await post({ name: "" }))],
      ["401 no key", 401, () => stack.api("/v1/projects")],
      [
        "403 role",
        403,
        async () =>
          stack.api("/v1/request-logs", {
            headers: bearer((await createApiTenant(stack.db, "read_only")).secret),
          }),
      ],
      ["404 no route", 404, () => stack.api("/nowhere")],
      [
        "413 body too large",
        413,
        async () => stack.api("/v1/projects", await post({ name: "x".repeat(1_100_000) })),
      ],
      [
        "415 not JSON",
        415,
        async () =>
          stack.api("/v1/projects", {
            method: "POST",
            headers: { Authorization: `Bearer ${await key()}` },
            body: "name=x",
          }),
      ],
      [
        "429 rate limited",
        429,
        async () => {
          for (let i = 0; i < 2; i++)
            await (await stack.api("/v1/org", { headers: bearer(limited) })).arrayBuffer();
          return stack.api("/v1/org", { headers: bearer(limited) });
        },
      ],
    ];
    for (const [label, status, send] of answers) {
      const response = await send();
      await response.arrayBuffer();
      expect(response.status, label).toBe(status);
      expectSecureHeaders(response, label);
      // JSON is never rendered: its policy allows nothing at all.
      expect(response.headers.get("Content-Security-Policy"), label).toBe(JSON_POLICY);
    }

    // 503: the database down during authentication.
    const other = await createApiTenant(stack.db);
    await stack.stopBridge();
    let outage: Response;
    try {
      outage = await stack.api("/v1/projects", { headers: bearer(other.secret) });
    } finally {
      await stack.restartBridge();
    }
    expect(outage.status).toBe(503);
    expectSecureHeaders(outage, "503");

    for (const asset of Object.values(DOCS_ASSETS)) {
      const response = await stack.api(asset);
      await response.arrayBuffer();
      expect(response.status, asset).toBe(200);
      expectSecureHeaders(response, asset);
    }
  });
});

describe("/docs", () => {
  test("the page references no other origin, and its policy allows none", async () => {
    const response = await stack.api("/docs");
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toContain("text/html");
    expectSecureHeaders(response, "/docs");
    const html = await response.text();

    // Every script and stylesheet is a path on this origin; nothing inline for the policy to excuse.
    const urls = [...html.matchAll(/\s(?:src|href)="([^"]*)"/g)].map((m) => m[1]!);
    expect(urls.length).toBeGreaterThanOrEqual(3);
    for (const url of urls) expect(url, url).toMatch(/^\/(?!\/)/);
    expect(html).not.toMatch(/https?:|\/\/[a-z]/i);
    expect(html).not.toMatch(/<script(?![^>]*\ssrc=)[^>]*>/i);
    expect(html).not.toMatch(/\sstyle=/i);
    for (const asset of [DOCS_ASSETS.script, DOCS_ASSETS.style, DOCS_ASSETS.init])
      expect(urls).toContain(asset);

    const csp = policy(response.headers.get("Content-Security-Policy"));
    expect(csp.get("default-src")).toEqual(["'none'"]);
    expect(csp.get("script-src")).toEqual(["'self'"]);
    expect(csp.get("style-src")).toEqual(["'self'"]);
    expect(csp.get("connect-src")).toEqual(["'self'"]);
    for (const [directive, sources] of csp) {
      for (const source of sources)
        expect(["'self'", "'none'", "data:"], `${directive} ${source}`).toContain(source);
    }
  });

  test("the renderer is the lockfile's swagger-ui-dist, byte for byte, cached for a year", async () => {
    const lock = JSON.parse(await readFile(path.join(ROOT, "package-lock.json"), "utf8")) as {
      packages: Record<string, { version: string }>;
    };
    const version = lock.packages["node_modules/swagger-ui-dist"]!.version;
    expect(version).toMatch(/^\d+\.\d+\.\d+$/);
    const files: [string, string, string][] = [
      [DOCS_ASSETS.script, "swagger-ui-bundle.js", "text/javascript"],
      [DOCS_ASSETS.style, "swagger-ui.css", "text/css"],
    ];
    for (const [route, file, type] of files) {
      expect(route).toContain(version);
      const response = await stack.api(route);
      expect(response.status).toBe(200);
      expect(response.headers.get("content-type")).toContain(type);
      expect(response.headers.get("cache-control")).toBe("public, max-age=31536000, immutable");
      const served = await response.text();
      const pinned = await readFile(path.join(ROOT, "node_modules/swagger-ui-dist", file), "utf8");
      expect(served.length).toBe(pinned.length);
      expect(served === pinned).toBe(true);
    }

    // Our start-up script: the spec from this origin, no validator badge (a third-party call), no key kept.
    const init = await stack.api(DOCS_ASSETS.init);
    expect(init.headers.get("cache-control")).toBe("no-cache");
    const script = await init.text();
    expect(script).toContain("validatorUrl: null");
    expect(script).toContain("persistAuthorization: false");
    expect(script).not.toMatch(/https?:/);
  });
});
