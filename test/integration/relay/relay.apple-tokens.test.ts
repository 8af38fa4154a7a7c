import { sql } from "kysely";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import type { RelayEvent, RelayMessage } from "../../../shared/schemas/relay";
import { addApiKey, bearer } from "../../support/apiTenant";
import { addDestinations } from "../../support/destinations";
import { type FakePlatforms, startFakePlatforms } from "../../support/fakePlatforms";
import { type Stack, startStack, waitFor } from "../../support/stack";
import { createTenant, type TestTenant } from "../../support/tenant";

// Apple AdServices tokens are one-day credentials: a batch that dies is stored without them (so it cannot
// be replayed: replay refuses Apple with replay_unsupported), and a batch asks Apple once per user.
// Messages are put on the relay queue directly, as the consumer does.

let stack: Stack;
let fakes: FakePlatforms;

beforeAll(async () => {
  fakes = await startFakePlatforms();
  stack = await startStack({ relayVars: fakes.vars });
});
afterAll(async () => {
  await stack?.dispose();
  await fakes?.close();
});

function event(eventId: string, userId: string, adServicesToken: string, timestamp: Date): RelayEvent {
  return {
    eventId,
    name: "app_install",
    userId,
    timestamp: timestamp.toISOString(),
    appId: "com.example.app",
    os: "iOS",
    osVersion: "18.1",
    deviceModel: null,
    browser: null,
    country: "US",
    emailSha256: null,
    phoneSha256: null,
    phoneE164Sha256: null,
    properties: {},
    consentAds: true,
    adServicesToken,
  };
}

async function relay(t: TestTenant, events: RelayEvent[]): Promise<void> {
  const queue = await stack.mf.getQueueProducer<RelayMessage>("RELAY_QUEUE", "consumer");
  await queue.send(
    {
      v: 1,
      batchId: `rb_${t.projectId.slice(-12)}${events.length}`,
      orgId: t.orgId,
      projectId: t.projectId,
      destination: "apple-search-ads",
      enqueuedAt: new Date().toISOString(),
      events,
    },
    { contentType: "json" },
  );
}

async function latestDelivery(t: TestTenant, status: string) {
  const key = await addApiKey(stack.db, t.orgId, "read_only");
  return waitFor(async () => {
    const res = await stack.api(`/v1/projects/${t.projectId}/destinations/apple-search-ads/deliveries`, {
      headers: bearer(key.secret),
    });
    const body = (await res.json()) as { data: Record<string, unknown>[] };
    return body.data[0]?.status === status ? body.data[0] : undefined;
  }, 45_000);
}

function calls(token: string) {
  return fakes.apple.requests.filter((r) => r.body === token).map((r) => r.status);
}

describe("Apple AdServices tokens", () => {
  test("Apple down past every attempt: the dead letter holds no token, no log line does, and replay is refused", async () => {
    const t = await createTenant(stack.db);
    await addDestinations(stack.db, t, fakes, { apple: true });
    const token = `tok-dlq-${t.projectId.slice(-10)}-${"Z".repeat(200)}`;
    fakes.apple.tokens.set(token, { record: { attribution: false } });
    fakes.apple.failAlways({ kind: "status", status: 503 });
    try {
      await relay(t, [event("install-1", "ivy", token, new Date())]);
      const row = await latestDelivery(t, "dead_lettered");
      expect(row).toMatchObject({ attempts: 11, responseCode: 503 }); // 1 + max_retries (10)
    } finally {
      fakes.apple.failAlways(null);
    }
    expect(calls(token)).toHaveLength(11);
    const dead = await waitFor(async () => {
      const { rows } = await sql<{ row: string; events: RelayEvent[] }>`
        select d::text as row, d.events from relay_dead_letters d where project_id = ${t.projectId}`.execute(
        stack.db,
      );
      return rows.length ? rows : undefined;
    });
    expect(dead).toHaveLength(1);
    // The batch is kept (visible, with its event ids), the token is not: not in any column, not in a log.
    expect(dead[0]?.events.map((e) => e.eventId)).toEqual(["install-1"]);
    expect(dead[0]?.row).not.toContain(token);
    expect(dead[0]?.row.toLowerCase()).not.toContain("adservicestoken");
    expect(stack.logs.join("\n")).not.toContain(token);

    // Without a token there is nothing to send again: refused with a stable code, the letter left as is.
    const owner = await addApiKey(stack.db, t.orgId, "owner");
    const res = await stack.api(
      `/v1/projects/${t.projectId}/destinations/apple-search-ads/dead-letters/replay`,
      { method: "POST", headers: bearer(owner.secret) },
    );
    expect(res.status).toBe(422);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe("replay_unsupported");
    const letters = await stack.db
      .selectFrom("relay_dead_letters")
      .select("replayed_at")
      .where("project_id", "=", t.projectId)
      .execute();
    expect(letters).toEqual([{ replayed_at: null }]);
    expect(calls(token)).toHaveLength(11);
  });

  test("two tokens of one user in a batch: one AdServices call, with the user's latest token", async () => {
    const t = await createTenant(stack.db);
    await addDestinations(stack.db, t, fakes, { apple: true });
    const p = t.projectId.slice(-10);
    const older = `tok-old-${p}`;
    const newer = `tok-new-${p}`;
    const other = `tok-other-${p}`;
    for (const tok of [older, newer, other]) fakes.apple.tokens.set(tok, { record: { attribution: false } });
    const now = Date.now();
    // The newer token comes first in the batch: "latest" is by event time, not by position.
    await relay(t, [
      event("reinstall", "jay", newer, new Date(now)),
      event("install", "jay", older, new Date(now - 60_000)),
      event("install-kim", "kim", other, new Date(now - 60_000)),
    ]);
    const row = await latestDelivery(t, "delivered");
    expect(row).toMatchObject({ sentCount: 2, skipped: { attribution_token_superseded: 1 } });
    expect(calls(newer)).toEqual([200]);
    expect(calls(older)).toEqual([]);
    expect(calls(other)).toEqual([200]);
    const stored = await stack.db
      .selectFrom("apple_attributions")
      .select(["user_id", "event_id"])
      .where("project_id", "=", t.projectId)
      .orderBy("user_id")
      .execute();
    expect(stored).toEqual([
      { user_id: "jay", event_id: "reinstall" },
      { user_id: "kim", event_id: "install-kim" },
    ]);
  });
});
