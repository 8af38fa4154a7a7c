import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { IDBFactory } from "fake-indexeddb";
import { afterAll, describe, expect, test } from "vitest";
import { indexedDbStorage, type LayersStorage, memoryStorage } from "../../../sdk/src";
import { fileStorage } from "../../../sdk/src/node";
import { sdkEventSchema } from "../../../shared/schemas/sdk-event";
import { errorAnswer, KEY, settle } from "./harness";
import { setup } from "./setup";

const down = () => errorAnswer(503, "queue_unavailable");
const tmp = mkdtempSync(join(tmpdir(), "layers-sdk-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** Like React Native's AsyncStorage: every call answers later. */
function asyncStorage(): LayersStorage & { items: Map<string, string> } {
  const items = new Map<string, string>();
  const later = <T>(v: T) => new Promise<T>((resolve) => setImmediate(() => resolve(v)));
  return {
    items,
    getItem: (k) => later(items.get(k) ?? null),
    setItem: async (k, v) => void items.set(k, await later(v)),
    removeItem: async (k) => void items.delete(await later(k)),
  };
}

const storages: [string, () => LayersStorage][] = [
  ["memory", memoryStorage],
  ["AsyncStorage-like", asyncStorage],
  ["IndexedDB", () => indexedDbStorage("layers-test", new IDBFactory() as never)],
  ["file", () => fileStorage(join(tmp, `${Math.random()}.json`))],
];

describe.each(storages)("SDK persistence on %s storage", (_, makeStorage) => {
  test("a reload keeps every queued event with its eventId and timestamp; the next instance sends them", async () => {
    const storage = makeStorage();
    const first = setup({ storage, flushAt: 100, answer: down });
    await first.layers.ready;
    const ids = [first.layers.track("a", { n: 1 }), first.layers.track("b"), first.layers.track("c")];
    await first.layers.flush(); // 503: stays queued
    const sentBefore = first.ingest.requests[0]!.events;
    await first.layers.shutdown();

    const second = setup({ storage, flushAt: 100 });
    await second.layers.ready;
    await second.layers.flush();
    expect(second.ingest.requests[0]!.events).toEqual(sentBefore);
    expect(second.ingest.ids()).toEqual(ids);
    // Delivered and removed from storage: a third instance has nothing to send.
    await second.layers.shutdown();
    const third = setup({ storage });
    await third.layers.ready;
    await third.layers.flush();
    expect(third.ingest.requests).toHaveLength(0);
  });

  test("anonymousId and userId persist; reset() starts a new anonymous identity", async () => {
    const storage = makeStorage();
    const first = setup({ storage });
    await first.layers.ready;
    const anonymousId = first.layers.anonymousId;
    expect(anonymousId).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    first.layers.identify("user-7", { email: "a@example.com" });
    await first.layers.shutdown();

    const second = setup({ storage, flushAt: 1 });
    // Tracked before the stored identity was read: still gets the stored user.
    second.layers.track("before-ready");
    await second.layers.ready;
    expect(second.layers.anonymousId).toBe(anonymousId);
    expect(second.layers.userId).toBe("user-7");
    second.layers.track("after-ready");
    await second.layers.flush();
    const byName = Object.fromEntries(
      second.ingest.requests.flatMap((r) => r.events).map((e) => [e.name, e]),
    );
    // Both carry the stored anonymous id too (the one identify linked on the server), not the provisional
    // one the instance made before it could read storage.
    expect(byName["before-ready"]).toMatchObject({ userId: "user-7", anonymousId });
    expect(byName["after-ready"]).toMatchObject({ userId: "user-7", anonymousId });
    // Contact data is not persisted on the device: only the identify event itself carried it.
    expect(byName["after-ready"]).not.toHaveProperty("email");

    second.layers.reset();
    expect(second.layers.userId).toBeNull();
    expect(second.layers.anonymousId).not.toBe(anonymousId);
    second.layers.track("anonymous");
    await second.layers.flush();
    const afterReset = second.ingest.requests.at(-1)!.events[0]!;
    expect(afterReset).not.toHaveProperty("userId");
    // The new anonymous id is sent: nothing after reset() can be linked to user-7 by the server.
    expect(afterReset.anonymousId).toBe(second.layers.anonymousId);
    await second.layers.shutdown();
    const third = setup({ storage });
    await third.layers.ready;
    expect(third.layers.anonymousId).toBe(second.layers.anonymousId);
    expect(third.layers.userId).toBeNull();
  });
});

describe("SDK identity read late (IndexedDB, AsyncStorage answer after the first events)", () => {
  test("a consent refused on an earlier visit holds for events tracked before it was read", async () => {
    const storage = asyncStorage();
    const first = setup({ storage });
    await first.layers.ready;
    first.layers.identify("user-1");
    first.layers.setConsent({ ads: false });
    await first.layers.shutdown();

    const second = setup({ storage, flushAt: 100 });
    second.layers.track("app_open"); // before the stored identity is read
    await second.layers.ready;
    await second.layers.flush();
    expect(second.ingest.requests[0]!.events[0]).toMatchObject({
      name: "app_open",
      userId: "user-1",
      consent: { ads: false },
    });
  });

  test("setConsent before the identity is read keeps the stored anonymousId and userId", async () => {
    const storage = asyncStorage();
    const first = setup({ storage });
    await first.layers.ready;
    first.layers.identify("user-1");
    await first.layers.shutdown();

    const second = setup({ storage, flushAt: 100 });
    second.layers.setConsent({ ads: true }); // a consent banner answering at page load
    await second.layers.ready;
    expect(second.layers.anonymousId).toBe(first.layers.anonymousId);
    expect(second.layers.userId).toBe("user-1");
    second.layers.track("a");
    await second.layers.flush();
    expect(second.ingest.requests[0]!.events[0]).toMatchObject({ userId: "user-1", consent: { ads: true } });
  });

  test("identify with an empty or over-long userId is refused and changes nothing", async () => {
    const { layers, rejected } = setup();
    await layers.ready;
    layers.identify("user-1");
    expect(layers.identify("")).toBeNull();
    expect(layers.identify("u".repeat(257))).toBeNull();
    expect(layers.userId).toBe("user-1");
    expect(rejected.map((r) => r.rejection.code)).toEqual(["invalid_event", "invalid_event"]);
  });

  test("a stored identity of the wrong shape is replaced, not sent", async () => {
    const storage = memoryStorage();
    await storage.setItem(
      `layers.${KEY.slice(-8)}.identity`,
      JSON.stringify({ anonymousId: "a", userId: 42, consent: { ads: "no" } }),
    );
    const { layers, ingest } = setup({ storage });
    await layers.ready;
    expect(layers.userId).toBeNull();
    layers.track("a");
    await layers.flush();
    const event = ingest.requests[0]!.events[0]!;
    expect(event).not.toHaveProperty("userId");
    expect(event).not.toHaveProperty("consent");
  });
});

describe("SDK queue bounds and sharing", () => {
  test("past maxQueueSize the oldest events are dropped, reported as queue_full, and gone from storage", async () => {
    const storage = memoryStorage();
    const { layers, rejected } = setup({ storage, maxQueueSize: 5, flushAt: 100, answer: down });
    await layers.ready;
    const ids = Array.from({ length: 8 }, (_, i) => layers.track(`e${i}`));
    expect(rejected.map((r) => [r.event.eventId, r.rejection.code])).toEqual(
      ids.slice(0, 3).map((id) => [id, "queue_full"]),
    );
    await layers.shutdown();
    const stored = JSON.parse((await storage.getItem(`layers.${KEY.slice(-8)}.queue`)) as string);
    expect(stored.map((e: { eventId: string }) => e.eventId)).toEqual(ids.slice(3));
  });

  test.each([
    [
      "memory (localStorage works the same way)",
      () => {
        const shared = memoryStorage();
        return [shared, shared];
      },
    ],
    [
      "IndexedDB, one connection per tab",
      () => {
        const factory = new IDBFactory() as never;
        return [indexedDbStorage("tabs", factory), indexedDbStorage("tabs", factory)];
      },
    ],
  ] as [string, () => LayersStorage[]][])("two tabs on one %s keep each other's events", async (_, open) => {
    const [storageA, storageB] = open();
    const tabA = setup({ storage: storageA, flushAt: 100, answer: down });
    const tabB = setup({ storage: storageB, flushAt: 100, answer: down });
    await Promise.all([tabA.layers.ready, tabB.layers.ready]);
    const a = [tabA.layers.track("from-a"), tabA.layers.track("from-a-2")];
    const b = tabB.layers.track("from-b");
    await settle();
    await Promise.all([tabA.layers.shutdown(), tabB.layers.shutdown()]);
    const next = setup({ storage: storageA });
    await next.layers.ready;
    await next.layers.flush();
    expect(next.ingest.ids().sort()).toEqual([...a, b].sort());
  });

  test("properties changed by the caller after track() change neither what is sent nor what is stored", async () => {
    const storage = memoryStorage();
    const first = setup({ storage, flushAt: 100, answer: down });
    await first.layers.ready;
    const properties: Record<string, unknown> = { plan: "pro" };
    first.layers.track("a", properties as never);
    properties.plan = "changed";
    await first.layers.flush();
    await first.layers.shutdown();
    const second = setup({ storage });
    await second.layers.ready;
    await second.layers.flush();
    expect(first.ingest.requests[0]!.events[0]!.properties).toEqual({ plan: "pro" });
    expect(second.ingest.requests[0]!.events[0]!.properties).toEqual({ plan: "pro" });
  });

  test("unreadable stored state is ignored, not fatal", async () => {
    const storage = memoryStorage();
    await storage.setItem(`layers.${KEY.slice(-8)}.queue`, "{not json");
    await storage.setItem(`layers.${KEY.slice(-8)}.identity`, "[]");
    const { layers, ingest } = setup({ storage });
    await layers.ready;
    layers.track("a");
    await layers.flush();
    expect(ingest.requests[0]!.events.map((e) => e.name)).toEqual(["a"]);
  });

  test("IndexedDB that cannot be opened falls back (here: to memory, as Node has no localStorage)", async () => {
    const broken = {
      open: () => {
        throw new Error("SecurityError");
      },
    };
    const storage = indexedDbStorage("x", broken as never);
    await storage.setItem("k", "v");
    expect(await storage.getItem("k")).toBe("v");
  });

  test("the file storage writes JSON a restart reads back", async () => {
    const path = join(tmp, "nested", "state.json");
    const storage = fileStorage(path);
    await storage.setItem("k", "v");
    expect(JSON.parse(readFileSync(path, "utf8"))).toEqual({ k: "v" });
    expect(await fileStorage(path).getItem("k")).toBe("v");
    expect(await fileStorage(path).getItem("constructor")).toBeNull();
  });
});

describe("SDK anonymousId on the wire", () => {
  test("sent by default with every event, identify included, in the shape the ingest accepts", async () => {
    const { layers, ingest } = setup({ flushAt: 100 });
    await layers.ready;
    layers.track("before_login");
    layers.identify("user-9");
    layers.track("after_login");
    await layers.flush();
    const events = ingest.requests.flatMap((r) => r.events);
    expect(events.map((e) => [e.name, e.userId, e.anonymousId])).toEqual([
      ["before_login", undefined, layers.anonymousId],
      ["identify", "user-9", layers.anonymousId],
      ["after_login", "user-9", layers.anonymousId],
    ]);
    // The ingest schema knows the field (strict: nothing would be stripped).
    for (const event of events) expect(sdkEventSchema.strict().safeParse(event).success).toBe(true);
  });

  test("sendAnonymousId: false leaves it out", async () => {
    const { layers, ingest } = setup({ sendAnonymousId: false });
    layers.track("a");
    await layers.flush();
    expect(ingest.requests[0]!.events[0]).not.toHaveProperty("anonymousId");
  });

  test("an event tracked before a late-read identity (AsyncStorage) gets the stored anonymous id", async () => {
    const storage = asyncStorage();
    const first = setup({ storage });
    await first.layers.ready;
    await first.layers.shutdown();

    const second = setup({ storage, flushAt: 100 });
    second.layers.track("app_open");
    await second.layers.ready;
    await second.layers.flush();
    expect(second.ingest.requests[0]!.events[0]!.anonymousId).toBe(first.layers.anonymousId);
  });
});

describe("SDK ads consent refused", () => {
  test("ad ids, the AdServices token and the page URL are neither stored on the device nor sent", async () => {
    const inner = memoryStorage();
    const written: string[] = [];
    const storage: LayersStorage = {
      getItem: (key) => inner.getItem(key),
      setItem: (key, value) => {
        written.push(value);
        return inner.setItem(key, value);
      },
      removeItem: (key) => inner.removeItem(key),
    };
    const { layers, ingest } = setup({
      storage,
      flushAt: 100,
      answer: () => errorAnswer(503, "queue_unavailable"),
    });
    await layers.ready;
    layers.setConsent({ ads: false });
    layers.setDevice({
      os: "iOS",
      idfa: "6D92078A-8246-4BA4-AE5B-76104861E7DC",
      gaid: "38400000-8cf0-11bd-b23e-10b96e40000d",
    });
    layers.setAdServicesToken("adservices-token-refused");
    const id = layers.track("purchase", { value: 5 });
    await layers.flush();
    await settle();
    expect(ingest.requests.length).toBeGreaterThan(0);
    const sent = ingest.requests[0]!.events.find((e) => e.eventId === id);
    expect(sent).toMatchObject({ consent: { ads: false }, device: { os: "iOS" } });
    const everything = [...written, ...ingest.requests.map((r) => JSON.stringify(r.events))].join("\n");
    expect(everything).toContain(id);
    for (const secret of ["6D92078A", "38400000-8cf0", "adservices-token-refused"]) {
      expect(everything).not.toContain(secret);
    }
  });
});
