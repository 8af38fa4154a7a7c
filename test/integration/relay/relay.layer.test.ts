import { afterAll, beforeAll, expect, test } from "vitest";
import { api } from "../../support/api";
import { addApiKey } from "../../support/apiTenant";
import { addDestinations } from "../../support/destinations";
import { type FakePlatforms, startFakePlatforms } from "../../support/fakePlatforms";
import { type Stack, startStack, waitFor } from "../../support/stack";
import { createTenant } from "../../support/tenant";

// The attribution layer switched off through the API, end to end: SDK → ingest → consumer (events stored)
// → nothing queued for the relay, so the (fake) platform never sees the event; switched back on, the next
// event is relayed as before.

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

test("attribution off: events are stored but not relayed; on again, the next event is", async () => {
  const t = await createTenant(stack.db);
  await addDestinations(stack.db, t, fakes, { meta: {} });
  const admin = await addApiKey(stack.db, t.orgId, "admin");
  const as = api(stack, admin.secret);
  const layer = (enabled: boolean) => as.put(`/v1/projects/${t.projectId}/layers/attribution`, { enabled });
  const send = async (eventId: string) => {
    const response = await stack.ingest(
      {
        events: [
          {
            eventId,
            name: "purchase",
            userId: "user-layer",
            appId: "com.example.shop",
            email: "layer@example.com",
            device: { os: "iOS", osVersion: "18.1", model: "iPhone16,2" },
            consent: { ads: true },
            properties: { value: 1, currency: "EUR" },
          },
        ],
      },
      { key: t.sdkKey, headers: { "User-Agent": "Layers/1.0 (iPhone; iOS 18.1; Scale/3.00)" } },
    );
    expect(response.status).toBe(202);
  };
  const stored = (eventId: string) =>
    waitFor(
      async () =>
        (await stack.db
          .selectFrom("sdk_events")
          .select("event_id")
          .where("project_id", "=", t.projectId)
          .where("event_id", "=", eventId)
          .executeTakeFirst()) ?? undefined,
    );

  expect((await layer(false)).status).toBe(200);
  const quiet = `quiet-${t.projectId}`;
  await send(quiet);
  await stored(quiet);

  expect((await layer(true)).status).toBe(200);
  const loud = `loud-${t.projectId}`;
  await send(loud);
  await waitFor(async () => fakes.meta.accepted.get(loud));
  expect(fakes.meta.accepted.get(quiet)).toBeUndefined();
});
