import { webcrypto } from "node:crypto";
import { runInNewContext } from "node:vm";
import { build } from "esbuild";
import { expect, test } from "vitest";
import type { createLayers } from "../../../sdk/src";
import { ENDPOINT, KEY } from "./harness";

// The script-tag file as a page gets it (sdk/build.ts builds it the same way): one global, `Layers`, and
// nothing else on the page's global object.
test("the script-tag bundle defines only the global Layers, and its createLayers sends events", async () => {
  const out = await build({
    entryPoints: [new URL("../../../sdk/src/index.ts", import.meta.url).pathname],
    bundle: true,
    minify: true,
    format: "iife",
    globalName: "Layers",
    platform: "browser",
    target: "es2020",
    write: false,
  });
  const bodies: string[] = [];
  const page: Record<string, unknown> = {
    fetch: async (_url: string, init: { body: string }) => {
      bodies.push(init.body);
      return { status: 202, headers: new Headers(), text: async () => '{"accepted":1,"rejected":[]}' };
    },
    setTimeout,
    clearTimeout,
    crypto: webcrypto,
  };
  const before = new Set(Object.keys(page));
  runInNewContext(out.outputFiles[0]!.text, page);
  expect(Object.keys(page).filter((k) => !before.has(k))).toEqual(["Layers"]);

  const { createLayers: create } = page.Layers as { createLayers: typeof createLayers };
  const layers = create({ key: KEY, endpoint: ENDPOINT });
  const id = layers.track("signup");
  await layers.flush();
  expect(JSON.parse(bodies[0]!).events[0]).toMatchObject({ eventId: id, name: "signup" });
});
