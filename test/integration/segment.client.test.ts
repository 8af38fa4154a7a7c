import { randomUUID } from "node:crypto";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { Analytics } from "@segment/analytics-node";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import type { Db } from "../../shared/db";
import { UA, waitForEvents } from "../support/rows";
import { findInTables } from "../support/scan";
import { sha256 } from "../support/sha256";
import { type Stack, startStack, waitFor } from "../support/stack";
import { createTenant } from "../support/tenant";

// Segment's own published Node client (@segment/analytics-node, no code of ours in it), pointed at the
// local ingest with the one option a partner changes (`host`), over real HTTP, through the real ingest and
// consumer Workers (workerd) into Postgres. Between them a pass-through server that only adds the geo
// Cloudflare would add (request.cf) and records what the client sent, so the tests know the PII and the IP
// really left the client.

interface Relay {
  url: string;
  /** Every request body the client sent, parsed. */
  bodies: { batch: Record<string, unknown>[] }[];
  close(): Promise<void>;
}

async function startRelay(stack: Stack): Promise<Relay> {
  const bodies: Relay["bodies"] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", async () => {
      const body = Buffer.concat(chunks).toString("utf8");
      bodies.push(JSON.parse(body) as Relay["bodies"][number]);
      const headers: Record<string, string> = {};
      for (const [name, value] of Object.entries(req.headers)) {
        if (typeof value === "string" && !["host", "connection", "content-length"].includes(name)) {
          headers[name] = value;
        }
      }
      const answer = await stack.mf.dispatchFetch(`http://ingest.test${req.url}`, {
        method: req.method,
        headers,
        body,
        cf: { country: "DE", region: "Bavaria" },
      });
      res.writeHead(answer.status, Object.fromEntries(answer.headers));
      res.end(await answer.text());
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    bodies,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

/** The partner's setup, as in the README: the write key is the SDK key, `host` is the Layers ingest. */
function segmentClient(writeKey: string) {
  return new Analytics({ writeKey, host: relay.url, flushAt: 50, flushInterval: 200, maxRetries: 0 });
}

/** Resolves with the delivery error (or null) Segment's client reports for one call. */
function delivered(call: (callback: (err?: unknown) => void) => void): Promise<unknown> {
  return new Promise((resolve) => call((err) => resolve(err ?? null)));
}

async function persistedBatches(projectId: string, count: number) {
  await waitFor(async () =>
    stack.logs.filter((l) => l.includes(projectId) && l.includes("events persisted")).length >= count
      ? true
      : undefined,
  );
}

async function rowCount(db: Db, projectId: string): Promise<number> {
  const rows = await db
    .selectFrom("sdk_events")
    .select("event_id")
    .where("project_id", "=", projectId)
    .execute();
  return rows.length;
}

const RAW = {
  email: "Jane.Segment@Example.com",
  phone: "+49 170 7654321",
  ip: "203.0.113.77",
  groupEmail: "billing@initech.example",
  pageToken: "resetToken=s3cr3t",
};

let stack: Stack;
let relay: Relay;
beforeAll(async () => {
  stack = await startStack();
  relay = await startRelay(stack);
});
afterAll(async () => {
  await relay?.close();
  await stack?.dispose();
});

describe("@segment/analytics-node → Layers ingest", () => {
  test("track, identify, page, screen, group and alias land under their messageIds; PII hashed, no IP or UA", async () => {
    const t = await createTenant(stack.db);
    const analytics = segmentClient(t.sdkKey);
    const sent = relay.bodies.length;
    const context = { ip: RAW.ip, userAgent: UA.iphone };
    analytics.identify({
      userId: "seg-user-1",
      traits: { email: RAW.email, phone: RAW.phone, name: "Jane Segment", plan: "pro" },
      context,
    });
    analytics.track({
      userId: "seg-user-1",
      event: "Order Completed",
      properties: { revenue: 19.9, currency: "EUR" },
      context: { ...context, traits: { email: RAW.email } },
    });
    analytics.page({
      anonymousId: "anon-page-1",
      name: "Pricing",
      properties: {
        path: "/pricing",
        url: `https://shop.example/pricing?${RAW.pageToken}`,
        search: `?${RAW.pageToken}`,
      },
      context: { ...context, page: { url: `https://shop.example/pricing?${RAW.pageToken}#top` } },
    });
    analytics.screen({
      anonymousId: "anon-app-1",
      name: "Home",
      properties: { tab: "deals" },
      context: {
        ip: RAW.ip,
        app: { namespace: "com.example.shop" },
        os: { name: "iOS", version: "17.4" },
        device: { type: "ios", model: "iPhone15,2", advertisingId: "6D92078A-8246-4BA4-AE5B-76104861E7DC" },
      },
    });
    analytics.group({
      userId: "seg-user-1",
      groupId: "grp-42",
      traits: { name: "Initech", email: RAW.groupEmail },
      context,
    });
    analytics.alias({ userId: "seg-user-1", previousId: "anon-app-1", context });
    await analytics.closeAndFlush();

    const messages = relay.bodies.slice(sent).flatMap((b) => b.batch);
    expect(messages).toHaveLength(6);
    // What the client sent: its own messageIds, and the IP and User-Agent in context (read by nobody).
    expect(JSON.stringify(messages)).toContain(RAW.ip);
    const idOf = (type: string) => messages.find((m) => m.type === type)!.messageId as string;

    const rows = await waitForEvents(stack.db, t.projectId, 6);
    expect(rows.map((r) => r.event_id).sort()).toEqual(messages.map((m) => m.messageId).sort());
    const row = (type: string) => rows.find((r) => r.event_id === idOf(type))!;
    expect(row("identify")).toMatchObject({
      name: "identify",
      user_id: "seg-user-1",
      email_sha256: sha256(RAW.email.toLowerCase()),
      phone_sha256: sha256("491707654321"),
      os: "iOS", // parsed from context.userAgent, which is then dropped
      country: "DE",
      properties: {},
    });
    expect(row("track")).toMatchObject({
      name: "Order Completed",
      user_id: "seg-user-1",
      email_sha256: sha256(RAW.email.toLowerCase()),
      properties: { revenue: 19.9, currency: "EUR" },
      os: "iOS",
      browser: "Mobile Safari",
    });
    expect(row("page")).toMatchObject({
      name: "page_view",
      user_id: null,
      properties: { name: "Pricing", path: "/pricing", url: "https://shop.example/pricing" },
    });
    expect(row("screen")).toMatchObject({
      name: "screen_view",
      app_id: "com.example.shop",
      os: "iOS",
      os_version: "17.4",
      device_model: "iPhone15,2",
      properties: { tab: "deals", name: "Home" },
    });
    expect(row("group")).toMatchObject({ name: "group", properties: { groupId: "grp-42" } });
    expect(row("alias")).toMatchObject({
      name: "alias",
      user_id: "seg-user-1",
      properties: { previousId: "anon-app-1" },
    });

    // Nothing raw anywhere: not in any table, not in any log line.
    const needles = [
      RAW.email,
      "7654321",
      RAW.ip,
      "AppleWebKit",
      "Jane Segment",
      RAW.groupEmail,
      "Initech",
      RAW.pageToken,
      "6D92078A-8246-4BA4-AE5B-76104861E7DC",
      t.sdkKey,
    ];
    expect(await findInTables(stack.db, needles)).toEqual([]);
    const logs = stack.logs.join("\n").toLowerCase();
    expect(logs).toContain(t.projectId.toLowerCase());
    for (const needle of needles) expect(logs).not.toContain(needle.toLowerCase());
  });

  test("a messageId sent twice is stored once", async () => {
    const t = await createTenant(stack.db);
    for (let i = 0; i < 2; i++) {
      const analytics = segmentClient(t.sdkKey);
      const err = await delivered((cb) =>
        analytics.track({ userId: "u-dup", event: "Signed Up", messageId: "seg-dup-message-1" }, cb),
      );
      expect(err).toBeNull();
      await analytics.closeAndFlush();
    }
    await persistedBatches(t.projectId, 2);
    const rows = await waitForEvents(stack.db, t.projectId, 1);
    expect(rows.map((r) => r.event_id)).toEqual(["seg-dup-message-1"]);
    expect(await rowCount(stack.db, t.projectId)).toBe(1);
  });

  test("a wrong write key is refused with 401 and nothing is stored", async () => {
    const t = await createTenant(stack.db);
    // A name of its own: other files' rows on this database may hold the word "Refused" (a webhook
    // attempt's connection error), and the scan below looks in every table.
    const refused = `Refused-${randomUUID()}`;
    const wrong = segmentClient("lp_pk_doesNotExist000000000000000");
    const err = await delivered((cb) => wrong.track({ userId: "u-1", event: refused }, cb));
    expect(String((err as Error)?.message ?? err)).toContain("[401]");
    await wrong.closeAndFlush();
    // A Segment-shaped write key (not ours) is refused the same way.
    const foreign = segmentClient("DmBXIN4JnwqBnTqXccTF0wBnLXNQmFtk");
    const err2 = await delivered((cb) => foreign.track({ userId: "u-1", event: refused }, cb));
    expect(String((err2 as Error)?.message ?? err2)).toContain("[401]");
    await foreign.closeAndFlush();

    // The same tenant's right key goes through: the refusal was about the key, nothing else.
    const right = segmentClient(t.sdkKey);
    expect(await delivered((cb) => right.track({ userId: "u-1", event: "Accepted" }, cb))).toBeNull();
    await right.closeAndFlush();
    const rows = await waitForEvents(stack.db, t.projectId, 1);
    expect(rows.map((r) => r.name)).toEqual(["Accepted"]);
    expect(await findInTables(stack.db, [refused])).toEqual([]);
  });
});
