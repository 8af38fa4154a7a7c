import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { parseKeyring } from "../../../functions/destinations/crypto";
import { deleteDestination, putDestination } from "../../../functions/destinations/store";
import { DestinationCache } from "../../../functions/relay/destinationCache";
import { type RelayContext, relayBatch } from "../../../functions/relay/relayBatch";
import { defaultSendDeps } from "../../../functions/relay/send";
import { roleUrl } from "../../../scripts/local/migrate";
import { createNodeDb } from "../../../scripts/local/node-db";
import { type Db, withTenant } from "../../../shared/db";
import { testDatabaseUrl } from "../../support/database";
import { type FakePlatforms, startFakePlatforms } from "../../support/fakePlatforms";
import { relayEvent, relayMessage } from "../../support/messages";
import { TEST_DESTINATION_KEYRING } from "../../support/stack";
import { createTenant, type TestTenant } from "../../support/tenant";

// The relay Worker keeps decrypted destinations between batches (one DestinationCache per isolate). The
// partner's switches must still win at once: a destination turned off or deleted is not sent to by the
// next batch, and a replaced token is the one used. Same code as the Worker, with a cache shared across
// batches as its isolate shares it.

let ownerDb: Db;
let relayDb: Db;
let fakes: FakePlatforms;
const keyring = parseKeyring(TEST_DESTINATION_KEYRING);

beforeAll(async () => {
  fakes = await startFakePlatforms();
  ownerDb = createNodeDb(testDatabaseUrl(), 2);
  relayDb = createNodeDb(roleUrl(testDatabaseUrl(), "layers_relay"), 2);
});
afterAll(async () => {
  await relayDb?.destroy();
  await ownerDb?.destroy();
  await fakes?.close();
});

function context(destinations: DestinationCache): RelayContext {
  return {
    db: relayDb,
    keyring,
    endpoints: {
      metaApiBase: fakes.vars.META_API_BASE,
      tiktokApiBase: fakes.vars.TIKTOK_API_BASE,
      appleAdServicesUrl: fakes.vars.APPLE_ADSERVICES_URL,
      timeoutMs: 5_000,
      appleNotFoundRetryIntervalMs: 10,
    },
    deps: defaultSendDeps,
    retryBaseSeconds: 1,
    retryMaxSeconds: 10,
    destinations,
  };
}

async function putTikTok(t: TestTenant, enabled: boolean, token: string) {
  const pixelCode = `PX${t.projectId.slice(-10)}`;
  fakes.tiktok.tokens.set(pixelCode, token);
  await withTenant(ownerDb, t.orgId, (tx) =>
    putDestination(
      tx,
      t.orgId,
      t.projectId,
      { kind: "tiktok", enabled, pixelCode, accessToken: token, testEventCode: null },
      keyring,
      new Date(),
    ),
  );
}

function batch(t: TestTenant, name: string) {
  const events = [relayEvent({ eventId: `${t.projectId}-${name}`, userId: "u1", properties: { value: 1 } })];
  return relayMessage(t, "tiktok", events, { batchId: `rb_${name}_${t.projectId.slice(-8)}` });
}

describe("destinations cached between relay batches", () => {
  test("turned off, then deleted: the next batch is not sent; a replaced token is used at once", async () => {
    const t = await createTenant(ownerDb);
    const cache = new DestinationCache();
    const ctx = context(cache);
    await putTikTok(t, true, "tt-first-token");

    const first = batch(t, "first");
    expect(await relayBatch(ctx, first, 1)).toEqual({ kind: "ack", status: "delivered", sent: 1 });
    expect(fakes.tiktok.accepted.has(first.events[0]!.eventId)).toBe(true);
    expect(cache.size).toBe(1);

    await putTikTok(t, false, "tt-first-token");
    const off = batch(t, "off");
    expect(await relayBatch(ctx, off, 1)).toEqual({ kind: "ack", status: "skipped", sent: 0 });
    expect(fakes.tiktok.accepted.has(off.events[0]!.eventId)).toBe(false);

    // Back on with a new token: the fake accepts only the new one, so a stale cached token would fail.
    await putTikTok(t, true, "tt-second-token");
    const replaced = batch(t, "replaced");
    expect(await relayBatch(ctx, replaced, 1)).toEqual({ kind: "ack", status: "delivered", sent: 1 });
    expect(fakes.tiktok.accepted.has(replaced.events[0]!.eventId)).toBe(true);

    await withTenant(ownerDb, t.orgId, (tx) => deleteDestination(tx, t.projectId, "tiktok"));
    const deleted = batch(t, "deleted");
    expect(await relayBatch(ctx, deleted, 1)).toEqual({ kind: "ack", status: "skipped", sent: 0 });
    expect(fakes.tiktok.accepted.has(deleted.events[0]!.eventId)).toBe(false);
    // The deleted destination's token is no longer held in memory.
    expect(cache.size).toBe(0);
  });

  test("a key taken out of the ring stops its cached token at once", async () => {
    const t = await createTenant(ownerDb);
    const cache = new DestinationCache();
    await putTikTok(t, true, "tt-ring-token");
    expect(await relayBatch(context(cache), batch(t, "ring1"), 1)).toMatchObject({ status: "delivered" });

    const withoutKey = { ...context(cache), keyring: { currentKeyId: "other", keys: { other: "x" } } };
    await expect(relayBatch(withoutKey, batch(t, "ring2"), 1)).rejects.toThrow(/key|decrypt/i);
  });

  test("entries expire after their time to live", () => {
    let now = 0;
    const cache = new DestinationCache(() => now);
    const destination = { kind: "apple-search-ads", orgId: "o", projectId: "p", enabled: true } as const;
    cache.set("p apple", "stamp", { ...destination, status: "active" });
    expect(cache.get("p apple", "stamp")).toBeDefined();
    expect(cache.get("p apple", "other stamp")).toBeUndefined();
    cache.set("p apple", "stamp", { ...destination, status: "active" });
    now = 5 * 60_000 + 1;
    expect(cache.get("p apple", "stamp")).toBeUndefined();
  });
});
