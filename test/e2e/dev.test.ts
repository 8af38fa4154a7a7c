import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { ROOT } from "../../scripts/local/bundle";
import { createNodeDb } from "../../scripts/local/node-db";
import { DEMO, isLocalDatabase } from "../../scripts/local/seed";
import { launchChromium } from "../support/chromium";
import { testDatabaseUrl } from "../support/database";
import { type FakePlatforms, startFakePlatforms } from "../support/fakePlatforms";
import { waitFor } from "../support/stack";

// `npm run dev` as a newcomer runs it: the README's curl works as printed, and the system behaves like
// production — a dead-letter replay from the API reaches the relay (every Worker shares the local queues).

let dev: ChildProcess | undefined;
let output = "";
let fakes: FakePlatforms;
let dataDir: string;
const ports: Record<string, number> = {};

/**
 * A port that is free now, below Linux's ephemeral range (32768–60999): a port from bind(0) is in that
 * range, where every outgoing connection of the test files running meanwhile also takes its local port, so
 * one of eight such ports was sometimes taken before dev could listen on it.
 */
async function quietPort(): Promise<number> {
  const net = await import("node:net");
  for (;;) {
    const port = 20_000 + Math.floor(Math.random() * 12_000);
    const free = await new Promise<boolean>((resolve) => {
      const server = net.createServer();
      server.once("error", () => resolve(false));
      server.listen(port, "127.0.0.1", () => server.close(() => resolve(true)));
    });
    if (free && !Object.values(ports).includes(port)) return port;
  }
}

/**
 * Starts `npm run dev` on free ports and waits for its "Layers is running." line. If it exits first, the
 * test fails at once with its output; a port taken between the check and dev's listen anyway is a retry on
 * new ports (up to three starts), not a failure of the product.
 */
async function startDev(attempt = 1): Promise<void> {
  for (const name of [
    "PORT",
    "API_PORT",
    "CRON_PORT",
    "EXAMPLE_PORT",
    "S3_PORT",
    "BRIDGE_PORT",
    "NEON_HTTP_PORT",
    "EMBEDDED_PG_PORT",
  ]) {
    ports[name] = await quietPort();
  }
  output = "";
  const child = spawn(path.join(ROOT, "node_modules", ".bin", "tsx"), ["scripts/dev.ts"], {
    cwd: ROOT,
    // Its own process group, so the test stops everything it started, and only that.
    detached: true,
    stdio: ["ignore", "pipe", "pipe"],
    env: {
      ...process.env,
      ...Object.fromEntries(Object.entries(ports).map(([k, v]) => [k, String(v)])),
      DATABASE_URL: testDatabaseUrl(),
      LAYERS_DATA_DIR: dataDir,
      DEV_CRON_MINUTES: "0",
      ...fakes.vars,
    },
  });
  dev = child;
  let exited = false;
  child.once("exit", () => {
    exited = true;
  });
  child.stdout?.on("data", (chunk) => {
    output += String(chunk);
  });
  child.stderr?.on("data", (chunk) => {
    output += String(chunk);
  });
  await waitFor(
    async () => (output.includes("Layers is running.") || exited ? true : undefined),
    180_000,
    200,
  );
  if (!exited) return;
  dev = undefined;
  if (attempt < 3 && output.includes("EADDRINUSE")) return startDev(attempt + 1);
  throw new Error(`npm run dev exited before it was running:\n${output.slice(-4_000)}`);
}

beforeAll(async () => {
  fakes = await startFakePlatforms();
  dataDir = await mkdtemp(path.join(tmpdir(), "layers-dev-"));
  await startDev();
}, 400_000);

afterAll(async () => {
  if (dev?.pid && dev.exitCode === null && dev.signalCode === null) {
    const exited = new Promise((resolve) => dev?.once("exit", resolve));
    process.kill(-dev.pid, "SIGTERM");
    await exited;
  }
  await fakes?.close();
  await rm(dataDir, { recursive: true, force: true });
});

const api = (p: string, init: RequestInit = {}) =>
  fetch(`http://127.0.0.1:${ports.API_PORT}${p}`, {
    ...init,
    headers: { Authorization: `Bearer ${DEMO.apiKey}`, "Content-Type": "application/json", ...init.headers },
  });

describe("npm run dev", () => {
  test("the printed curl works as printed, and the event reaches Postgres", async () => {
    const curl = /curl -i -X POST (\S+) \\\n\s+-H '([^']+)' \\\n\s+-H '([^']+)' \\\n\s+-d '([^']+)'/.exec(
      output,
    );
    expect(curl, output).not.toBeNull();
    const [, url, auth, type, body] = curl as RegExpExecArray;
    const [authName, authValue] = (auth as string).split(": ");
    const [typeName, typeValue] = (type as string).split(": ");
    const res = await fetch(url as string, {
      method: "POST",
      headers: { [authName as string]: authValue as string, [typeName as string]: typeValue as string },
      body,
    });
    expect(res.status).toBe(202);
    expect(await res.json()).toEqual({ accepted: 1, rejected: [] });
    const user = await waitFor(async () => {
      const r = await api(`/v1/projects/${DEMO.projectId}/events/users/user-1`);
      const json = (await r.json()) as { events: { data: { id: string; country: string }[] } };
      return json.events.data.length ? json : undefined;
    });
    // request.cf is the local stand-in: geo is filled, never fetched from Cloudflare.
    expect(user.events.data[0]).toMatchObject({ id: "evt-1", country: "US" });
    expect(output).not.toContain("Unable to fetch the Request.cf object");
  });

  test("the SDK example page is served with the bundle and the demo key; a click in Chromium stores an event", async () => {
    const url = /SDK example page: (\S+)/.exec(output)?.[1];
    expect(url, output).toBe(`http://127.0.0.1:${ports.EXAMPLE_PORT}/example/`);
    const html = await fetch(url as string);
    expect(html.status).toBe(200);
    const text = await html.text();
    expect(text).toContain('<script src="/example/layers.min.js"></script>');
    expect(text).toContain(`key: "${DEMO.sdkKey}"`);
    expect(text).toContain(`endpoint: "http://127.0.0.1:${ports.PORT}"`);
    const bundle = await fetch(new URL("layers.min.js", url));
    expect(bundle.status).toBe(200);
    expect(bundle.headers.get("content-type")).toContain("text/javascript");
    expect(await bundle.text()).toContain("createLayers");

    const browser = await launchChromium();
    const db = createNodeDb(testDatabaseUrl(), 1);
    try {
      const page = await browser.newPage();
      const failed: string[] = [];
      page.on("pageerror", (error) => failed.push(String(error)));
      await page.goto(url as string);
      await page.click("#add");
      await page.locator("#status", { hasText: "Delivered" }).waitFor();
      const status = (await page.textContent("#status")) as string;
      const eventId = /eventId (\S+)$/.exec(status)?.[1];
      expect(eventId, status).toMatch(/^[0-9a-f-]{36}$/);
      expect(failed).toEqual([]);
      const stored = await waitFor(async () => {
        const row = await db
          .selectFrom("sdk_events")
          .select(["name", "country"])
          .where("project_id", "=", DEMO.projectId)
          .where("event_id", "=", eventId as string)
          .executeTakeFirst();
        return row ?? undefined;
      }, 30_000);
      expect(stored).toEqual({ name: "add_to_cart", country: "US" });
    } finally {
      await browser.close();
      await db.destroy();
    }
  });

  test("a dead-lettered relay batch replayed from the API is delivered, as in production", async () => {
    const datasetId = "9988776655";
    const token = "EAAdevloopReplayToken000000000000001";
    fakes.meta.tokens.set(datasetId, token);
    const put = await api(`/v1/projects/${DEMO.projectId}/destinations/meta`, {
      method: "PUT",
      body: JSON.stringify({ enabled: true, datasetId, accessToken: token, sendDeviceIds: false }),
    });
    expect([200, 201]).toContain(put.status);
    fakes.meta.failNext(1, { kind: "status", status: 400 });
    const eventId = `dev-replay-${Date.now()}`;
    const ingest = await fetch(`http://127.0.0.1:${ports.PORT}/l/events`, {
      method: "POST",
      headers: { Authorization: `Bearer ${DEMO.sdkKey}`, "Content-Type": "application/json" },
      body: JSON.stringify({
        eventId,
        name: "purchase",
        userId: "dev-user",
        appId: "com.example.app",
        device: { os: "iOS", osVersion: "18.1" },
        properties: { value: 9.99, currency: "USD" },
      }),
    });
    expect(ingest.status).toBe(202);
    await waitFor(async () => {
      const r = await api(`/v1/projects/${DEMO.projectId}/destinations/meta/deliveries?status=rejected`);
      const json = (await r.json()) as { data: unknown[] };
      return json.data.length ? true : undefined;
    }, 30_000);
    expect(fakes.meta.accepted.has(eventId)).toBe(false);

    const replay = await api(`/v1/projects/${DEMO.projectId}/destinations/meta/dead-letters/replay`, {
      method: "POST",
    });
    expect(replay.status).toBe(200);
    expect(await replay.json()).toMatchObject({ replayed: 1 });
    await waitFor(async () => (fakes.meta.accepted.has(eventId) ? true : undefined), 30_000);
  });
});

test("demo keys are seeded only into a database on this machine", () => {
  expect(isLocalDatabase("postgres://postgres@127.0.0.1:5432/test")).toBe(true);
  expect(isLocalDatabase("postgres://postgres@localhost/test")).toBe(true);
  expect(isLocalDatabase("postgres://owner:pw@ep-cool-sun-123.us-east-2.aws.neon.tech/neondb")).toBe(false);
  expect(isLocalDatabase("postgres://owner@10.0.0.5:5432/db")).toBe(false);
});
