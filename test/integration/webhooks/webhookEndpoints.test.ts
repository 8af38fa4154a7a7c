import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { WEBHOOK_EVENT_TYPES } from "../../../functions/webhooks/events";
import { WEBHOOK_LIMITS } from "../../../functions/webhooks/verbs";
import { type Api, api } from "../../support/api";
import { type ApiTenant, createApiTenant } from "../../support/apiTenant";
import { rememberSecret } from "../../support/issuedSecrets";
import { findInTables } from "../../support/scan";
import { type Stack, startStack } from "../../support/stack";
import { type Receiver, startReceiver, verifies } from "../../support/webhookReceiver";

// /v1/webhook-endpoints, as a partner uses it: create (the signing secret shown once, never stored as is,
// never in an audit row or a replay), read, change, delete, rotate (both secrets sign during the grace),
// test-send (signed, verified by the published `standardwebhooks` library in the receiver), the attempt log,
// the message list and re-send, the SSRF guard at the door, and every limit.

let stack: Stack;
let receiver: Receiver;
beforeAll(async () => {
  receiver = await startReceiver();
  stack = await startStack({ consumer: "recorder", apiVars: { WEBHOOK_ALLOW_LOCAL_HTTP: "true" } });
});
afterAll(async () => {
  await stack?.dispose();
  await receiver?.close();
});

interface Endpoint {
  id: string;
  url: string;
  description: string | null;
  eventTypes: string[];
  projectId: string | null;
  enabled: boolean;
  disabledReason: string | null;
  disabledAt: string | null;
  failingSince: string | null;
  previousSecretExpiresAt: string | null;
  createdAt: string;
  updatedAt: string;
}
type Created = Endpoint & { secret: string | null };
interface Message {
  id: string;
  endpointId: string;
  eventType: string;
  payload: Record<string, unknown>;
  status: string;
  attempts: number;
}
interface TestAnswer {
  messageId: string;
  success: boolean;
  statusCode: number | null;
  durationMs: number;
  errorCode: string | null;
  responseExcerpt: string | null;
}
interface List<T> {
  data: T[];
  hasMore: boolean;
  nextCursor: string | null;
}

async function owner(): Promise<{ tenant: ApiTenant; as: Api }> {
  const tenant = await createApiTenant(stack.db);
  return { tenant, as: api(stack, tenant.secret) };
}

async function create(as: Api, body: Record<string, unknown>, idempotencyKey?: string): Promise<Created> {
  const answer = await as.post<unknown, Created>(
    "/v1/webhook-endpoints",
    body,
    idempotencyKey ? { idempotencyKey } : {},
  );
  expect(answer.status, answer.text).toBe(201);
  rememberSecret(answer.body.secret);
  rememberSecret(answer.body.secret?.slice("whsec_".length));
  return answer.body;
}

const path = () => `/hook-${randomUUID()}`;

describe("create, read, change, delete", () => {
  test("the secret is whsec_ + base64 of 24 bytes, in the create answer only; GET and list never show it", async () => {
    const { as } = await owner();
    const url = receiver.url(path());
    const created = await create(as, {
      url,
      description: "Deletion receipts",
      eventTypes: ["deletion_request.failed", "deletion_request.completed"],
    });
    expect(created.secret).toMatch(/^whsec_[A-Za-z0-9+/]{32}$/);
    expect(Buffer.from(created.secret!.slice(6), "base64")).toHaveLength(24);
    expect(created).toMatchObject({
      url,
      description: "Deletion receipts",
      // Stored sorted and without duplicates.
      eventTypes: ["deletion_request.completed", "deletion_request.failed"],
      projectId: null,
      enabled: true,
      disabledReason: null,
      previousSecretExpiresAt: null,
    });
    expect(created.id).toMatch(/^whe_/);

    const one = await as.get<Endpoint>(`/v1/webhook-endpoints/${created.id}`);
    expect(one.status).toBe(200);
    expect(one.text).not.toContain('secret"');
    expect(one.text).not.toContain(created.secret);
    const list = await as.get<List<Endpoint>>("/v1/webhook-endpoints");
    expect(list.body.data.map((e) => e.id)).toEqual([created.id]);
    expect(list.text).not.toContain(created.secret);
  });

  test("the secret is stored only as ciphertext: no table holds it or its key bytes; the audit row has neither", async () => {
    const { tenant, as } = await owner();
    const created = await create(as, { url: receiver.url(path()) });
    const secret = created.secret!;
    const row = await stack.db
      .selectFrom("webhook_endpoints")
      .select(["secret_ciphertext", "secret_key_id"])
      .where("id", "=", created.id)
      .executeTakeFirstOrThrow();
    expect(row.secret_key_id).toBe("test-k1");
    expect(row.secret_ciphertext).not.toContain(secret.slice(6));
    expect(await findInTables(stack.db, [secret, secret.slice(6)])).toEqual([]);

    const audit = await stack.db
      .selectFrom("audit_log")
      .select(["action", "changes"])
      .where("org_id", "=", tenant.orgId)
      .where("resource_id", "=", created.id)
      .execute();
    expect(audit.map((a) => a.action)).toEqual(["webhook_endpoint.created"]);
    const diff = JSON.stringify(audit[0]!.changes);
    expect(diff).toContain(created.url);
    expect(diff).not.toContain(secret.slice(6));
    expect(diff).not.toContain(row.secret_ciphertext);
    expect(diff).not.toMatch(/secret"|ciphertext/i);
  });

  test("an idempotent replay of the create answers secret: null and creates nothing more", async () => {
    const { tenant, as } = await owner();
    const key = `create-${randomUUID()}`;
    const body = { url: receiver.url(path()) };
    const first = await create(as, body, key);
    const replay = await as.post<unknown, Created>("/v1/webhook-endpoints", body, { idempotencyKey: key });
    expect(replay.status).toBe(201);
    expect(replay.headers.get("Idempotent-Replayed")).toBe("true");
    expect(replay.body).toEqual({ ...first, secret: null });
    const rows = await stack.db
      .selectFrom("webhook_endpoints")
      .select("id")
      .where("org_id", "=", tenant.orgId)
      .execute();
    expect(rows).toHaveLength(1);
    const stored = await stack.db
      .selectFrom("idempotency_keys")
      .select("response_body")
      .where("org_id", "=", tenant.orgId)
      .execute();
    expect(JSON.stringify(stored)).not.toContain(first.secret!.slice(6));
  });

  test("PATCH changes what it names; disabling records reason manual; enabling clears it; both audited", async () => {
    const { tenant, as } = await owner();
    const created = await create(as, { url: receiver.url(path()), eventTypes: ["api_key.created"] });
    const projects = await as.post<unknown, { id: string }>("/v1/projects", { name: "Filter" });
    const url = receiver.url(path());
    const patched = await as.patch<unknown, Endpoint>(`/v1/webhook-endpoints/${created.id}`, {
      url,
      description: null,
      eventTypes: [],
      projectId: projects.body.id,
      enabled: false,
    });
    expect(patched.status, patched.text).toBe(200);
    expect(patched.body).toMatchObject({
      url,
      description: null,
      eventTypes: [],
      projectId: projects.body.id,
      enabled: false,
      disabledReason: "manual",
    });
    expect(patched.body.disabledAt).not.toBeNull();
    const enabled = await as.patch<unknown, Endpoint>(`/v1/webhook-endpoints/${created.id}`, {
      enabled: true,
    });
    expect(enabled.body).toMatchObject({ enabled: true, disabledReason: null, disabledAt: null });
    const actions = await stack.db
      .selectFrom("audit_log")
      .select("action")
      .where("org_id", "=", tenant.orgId)
      .where("resource_id", "=", created.id)
      .orderBy("occurred_at")
      .execute();
    expect(actions.map((a) => a.action)).toEqual([
      "webhook_endpoint.created",
      "webhook_endpoint.updated",
      "webhook_endpoint.updated",
    ]);
  });

  test("DELETE: 204, then 404 and gone from the list; it receives no more events", async () => {
    const { as } = await owner();
    const created = await create(as, { url: receiver.url(path()) });
    expect((await as.delete(`/v1/webhook-endpoints/${created.id}`)).status).toBe(204);
    expect((await as.get(`/v1/webhook-endpoints/${created.id}`)).status).toBe(404);
    expect((await as.delete(`/v1/webhook-endpoints/${created.id}`)).status).toBe(404);
    expect((await as.get<List<Endpoint>>("/v1/webhook-endpoints")).body.data).toEqual([]);
    const key = await as.post<unknown, { secret: string }>("/v1/api-keys", { name: "x", role: "read_only" });
    rememberSecret(key.body.secret);
    const deliveries = await stack.db
      .selectFrom("webhook_deliveries")
      .select("message_id")
      .where("endpoint_id", "=", created.id)
      .execute();
    expect(deliveries).toEqual([]);
  });

  test("lists page newest first with starting_after", async () => {
    const { as } = await owner();
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push((await create(as, { url: receiver.url(path()) })).id);
    const first = await as.get<List<Endpoint>>("/v1/webhook-endpoints?limit=2");
    expect(first.body.data.map((e) => e.id)).toEqual([ids[2], ids[1]]);
    expect(first.body.hasMore).toBe(true);
    const second = await as.get<List<Endpoint>>(
      `/v1/webhook-endpoints?limit=2&starting_after=${first.body.nextCursor}`,
    );
    expect(second.body.data.map((e) => e.id)).toEqual([ids[0]]);
    expect(second.body.hasMore).toBe(false);
  });
});

describe("the SSRF guard at the door", () => {
  // Every class the guard refuses, each with a URL of that class: 400 webhook_url_refused naming it.
  const refused: [string, string][] = [
    ["invalid_url", "not a url"],
    ["url_too_long", `https://hooks.example.com/${"a".repeat(WEBHOOK_LIMITS.maxUrlLength)}`],
    ["scheme_not_allowed", "ftp://hooks.example.com/x"],
    ["scheme_not_allowed", "http://hooks.example.com/x"],
    ["scheme_not_allowed", "file:///etc/passwd"],
    ["credentials_in_url", "https://user:pass@hooks.example.com/x"],
    ["private_address", "https://10.0.0.1/x"],
    ["private_address", "https://172.16.5.4/x"],
    ["private_address", "https://192.168.1.10/x"],
    ["private_address", "https://127.0.0.1/x"],
    ["private_address", "https://2130706433/x"],
    ["private_address", "https://0x7f.1/x"],
    ["private_address", "https://169.254.169.254/latest/meta-data/"],
    ["private_address", "https://100.64.0.1/x"],
    ["private_address", "https://[::1]/x"],
    ["private_address", "https://[fd00::1]/x"],
    ["private_address", "https://[fe80::1]/x"],
    ["private_address", "https://[::ffff:10.0.0.1]/x"],
    ["internal_hostname", "https://localhost/x"],
    ["internal_hostname", "https://metadata.google.internal/computeMetadata/v1/"],
    ["internal_hostname", "https://intranet/x"],
    ["internal_hostname", "https://printer.local/x"],
  ];

  test("every refused class: 400 webhook_url_refused with its reason, at create and at PATCH; nothing stored or changed", async () => {
    const { tenant, as } = await owner();
    const good = await create(as, { url: receiver.url(path()) });
    for (const [reason, url] of refused) {
      const createAnswer = await as.post("/v1/webhook-endpoints", { url });
      expect(createAnswer.status, `${url}: ${createAnswer.text}`).toBe(400);
      expect(createAnswer.error.code).toBe("webhook_url_refused");
      expect(createAnswer.error.details).toEqual([expect.objectContaining({ field: "url", reason })]);
      const patch = await as.patch(`/v1/webhook-endpoints/${good.id}`, { url });
      expect(patch.status, `${url}: ${patch.text}`).toBe(400);
      expect((patch.error.details as { reason: string }[])[0]!.reason).toBe(reason);
    }
    const rows = await stack.db
      .selectFrom("webhook_endpoints")
      .select(["id", "url"])
      .where("org_id", "=", tenant.orgId)
      .execute();
    expect(rows).toEqual([{ id: good.id, url: good.url }]);
  });

  test("a refused URL is never called: the guard runs before any request", async () => {
    // The receiver's own address spelled as the guard refuses it (https to a loopback literal).
    const { as } = await owner();
    const before = receiver.received().length;
    const port = new URL(receiver.url("/")).port;
    const answer = await as.post("/v1/webhook-endpoints", { url: `https://127.0.0.1:${port}/x` });
    expect(answer.error.code).toBe("webhook_url_refused");
    expect(receiver.received().length).toBe(before);
  });
});

describe("limits", () => {
  test("description, event types (count, unknown, inherited names), project and URL bounds: 400/404, nothing stored", async () => {
    const { tenant, as } = await owner();
    const url = receiver.url(path());
    const cases: [Record<string, unknown>, number, string][] = [
      [{ url, description: "d".repeat(WEBHOOK_LIMITS.maxDescriptionLength + 1) }, 400, "invalid_request"],
      [
        {
          url,
          eventTypes: Array.from({ length: WEBHOOK_LIMITS.maxEventTypes + 1 }, () => "api_key.created"),
        },
        400,
        "invalid_request",
      ],
      [{ url, eventTypes: ["api_key.exploded"] }, 400, "invalid_request"],
      [{ url, eventTypes: ["constructor"] }, 400, "invalid_request"],
      [{ url, eventTypes: ["__proto__"] }, 400, "invalid_request"],
      [{ url, projectId: "proj_doesNotExist" }, 404, "not_found"],
      [{ url: "" }, 400, "invalid_request"],
      [{ url, secret: "whsec_chosenByTheCaller" }, 400, "invalid_request"],
    ];
    for (const [body, status, code] of cases) {
      const answer = await as.post("/v1/webhook-endpoints", body);
      expect(answer.status, `${JSON.stringify(body).slice(0, 80)}: ${answer.text}`).toBe(status);
      expect(answer.error.code).toBe(code);
    }
    const description = await as.post<unknown, Created>("/v1/webhook-endpoints", {
      url,
      description: "d".repeat(WEBHOOK_LIMITS.maxDescriptionLength),
    });
    expect(description.status).toBe(201);
    rememberSecret(description.body.secret);
    const rows = await stack.db
      .selectFrom("webhook_endpoints")
      .select("id")
      .where("org_id", "=", tenant.orgId)
      .execute();
    expect(rows).toHaveLength(1);
  });

  test(`at most ${WEBHOOK_LIMITS.maxEndpointsPerOrg} endpoints per org (409); a deleted one frees its slot`, async () => {
    const { as } = await owner();
    const ids: string[] = [];
    for (let i = 0; i < WEBHOOK_LIMITS.maxEndpointsPerOrg; i++) {
      ids.push((await create(as, { url: receiver.url(`/limit-${i}`) })).id);
    }
    const over = await as.post("/v1/webhook-endpoints", { url: receiver.url("/limit-over") });
    expect(over.status).toBe(409);
    expect(over.error.code).toBe("conflict");
    expect(over.error.message).toContain(String(WEBHOOK_LIMITS.maxEndpointsPerOrg));
    expect((await as.delete(`/v1/webhook-endpoints/${ids[0]}`)).status).toBe(204);
    await create(as, { url: receiver.url("/limit-again") });
  });

  test("rotation grace: 0–7 days; more is 400", async () => {
    const { as } = await owner();
    const created = await create(as, { url: receiver.url(path()) });
    const over = await as.post(`/v1/webhook-endpoints/${created.id}/rotate-secret`, {
      gracePeriodSeconds: WEBHOOK_LIMITS.maxRotationGraceSeconds + 1,
    });
    expect(over.status).toBe(400);
    expect(over.error.code).toBe("invalid_request");
  });
});

describe("test send, rotation, attempts", () => {
  test("test: one signed webhook.test the standardwebhooks library verifies; the receiver's answer comes back and is logged", async () => {
    const { as } = await owner();
    const p = path();
    const created = await create(as, { url: receiver.url(p) });
    receiver.secrets.set(p, [created.secret!]);
    receiver.behave(p, () => ({ status: 202, body: `thanks ${created.secret}` }));
    const answer = await as.post<unknown, TestAnswer>(`/v1/webhook-endpoints/${created.id}/test`);
    expect(answer.status, answer.text).toBe(200);
    expect(answer.body).toMatchObject({ success: true, statusCode: 202, errorCode: null });
    // The receiver echoed the secret: the excerpt has it cut.
    expect(answer.body.responseExcerpt).toContain("thanks");
    expect(answer.body.responseExcerpt).not.toContain(created.secret!.slice(6));
    const [got] = receiver.received(p);
    expect(got!.verifiedWith[created.secret!]).toBe(true);
    expect(got!.id).toBe(answer.body.messageId);
    expect(JSON.parse(got!.body)).toEqual({
      type: "webhook.test",
      timestamp: expect.any(String),
      data: { webhookEndpointId: created.id, test: true },
    });

    const attempts = await as.get<List<{ messageId: string | null; statusCode: number; durationMs: number }>>(
      `/v1/webhook-endpoints/${created.id}/attempts`,
    );
    expect(attempts.body.data).toHaveLength(1);
    expect(attempts.body.data[0]).toMatchObject({ messageId: null, statusCode: 202 });
    expect(attempts.text).not.toContain(created.secret!.slice(6));
  });

  test("test: a receiver answering 500 is an answer (success false, http_status), not an error", async () => {
    const { as } = await owner();
    const p = path();
    const created = await create(as, { url: receiver.url(p) });
    receiver.behave(p, () => ({ status: 500, body: "boom" }));
    const answer = await as.post<unknown, TestAnswer>(`/v1/webhook-endpoints/${created.id}/test`);
    expect(answer.status).toBe(200);
    expect(answer.body).toMatchObject({
      success: false,
      statusCode: 500,
      errorCode: "http_status",
      responseExcerpt: "boom",
    });
  });

  // The receiver's library refuses timestamps more than 5 minutes off its clock, so every send happens at
  // the real time; the end of a grace period is set in the database (as if the day had passed).
  test("rotate: a new secret once; both sign during the grace period (default 24 h); after it, only the new one", async () => {
    const { as } = await owner();
    const p = path();
    const created = await create(as, { url: receiver.url(p) });
    const before = Date.now();
    const rotated = await as.post<unknown, Created>(
      `/v1/webhook-endpoints/${created.id}/rotate-secret`,
      undefined,
      // No body at all: the default grace period.
      { contentType: null },
    );
    expect(rotated.status, rotated.text).toBe(201);
    rememberSecret(rotated.body.secret);
    rememberSecret(rotated.body.secret?.slice(6));
    const fresh = rotated.body.secret!;
    expect(fresh).toMatch(/^whsec_/);
    expect(fresh).not.toBe(created.secret);
    const expires = Date.parse(rotated.body.previousSecretExpiresAt!);
    expect(expires).toBeGreaterThanOrEqual(before + 86_400_000 - 1_000);
    expect(expires).toBeLessThanOrEqual(Date.now() + 86_400_000);
    expect(await findInTables(stack.db, [fresh.slice(6)])).toEqual([]);

    receiver.secrets.set(p, [created.secret!, fresh]);
    const during = await as.post<unknown, TestAnswer>(`/v1/webhook-endpoints/${created.id}/test`);
    expect(during.body.success).toBe(true);
    const [first] = receiver.received(p);
    expect(first!.signatures).toHaveLength(2);
    expect(first!.verifiedWith).toEqual({ [created.secret!]: true, [fresh]: true });
    // The signatures are bound to the body: a tampered body fails in the library.
    expect(verifies(fresh, { body: `${first!.body} `, headers: first!.headers })).toBe(false);

    // Another endpoint whose grace period is over: only the new secret signs.
    const q = path();
    const old = await create(as, { url: receiver.url(q) });
    const rotatedLongAgo = await as.post<unknown, Created>(
      `/v1/webhook-endpoints/${old.id}/rotate-secret`,
      {},
    );
    rememberSecret(rotatedLongAgo.body.secret);
    const newest = rotatedLongAgo.body.secret!;
    await stack.db
      .updateTable("webhook_endpoints")
      .set({ previous_secret_expires_at: new Date(Date.now() - 1_000) })
      .where("id", "=", old.id)
      .execute();
    receiver.secrets.set(q, [old.secret!, newest]);
    expect((await as.post<unknown, TestAnswer>(`/v1/webhook-endpoints/${old.id}/test`)).body.success).toBe(
      true,
    );
    const [after] = receiver.received(q);
    expect(after!.signatures).toHaveLength(1);
    expect(after!.verifiedWith).toEqual({ [old.secret!]: false, [newest]: true });

    // gracePeriodSeconds 0 ends the previous secret at once; a replay hands out no secret and rotates
    // nothing again.
    const key = `rotate-${randomUUID()}`;
    const r1 = await as.post<unknown, Created>(
      `/v1/webhook-endpoints/${created.id}/rotate-secret`,
      { gracePeriodSeconds: 0 },
      { idempotencyKey: key },
    );
    rememberSecret(r1.body.secret);
    const r2 = await as.post<unknown, Created>(
      `/v1/webhook-endpoints/${created.id}/rotate-secret`,
      { gracePeriodSeconds: 0 },
      { idempotencyKey: key },
    );
    expect(r2.headers.get("Idempotent-Replayed")).toBe("true");
    expect(r2.body.secret).toBeNull();
    receiver.secrets.set(p, [fresh, r1.body.secret!]);
    await as.post(`/v1/webhook-endpoints/${created.id}/test`);
    const last = receiver.received(p).at(-1)!;
    expect(last.verifiedWith).toEqual({ [fresh]: false, [r1.body.secret!]: true });
    const audit = await stack.db
      .selectFrom("audit_log")
      .select("changes")
      .where("resource_id", "=", created.id)
      .where("action", "=", "webhook_endpoint.secret_rotated")
      .execute();
    expect(audit).toHaveLength(2);
    expect(JSON.stringify(audit)).not.toContain(fresh.slice(6));
    expect(JSON.stringify(audit)).not.toContain(r1.body.secret!.slice(6));
  });
});

describe("messages and re-send", () => {
  test("an endpoint lists its messages with status; resend puts one back in line; disabled → 409; unknown → 404", async () => {
    const { tenant, as } = await owner();
    const created = await create(as, { url: receiver.url(path()), eventTypes: ["api_key.revoked"] });
    const key = await as.post<unknown, { id: string; secret: string }>("/v1/api-keys", {
      name: "short-lived",
      role: "read_only",
    });
    rememberSecret(key.body.secret);
    expect((await as.post(`/v1/api-keys/${key.body.id}/revoke`)).status).toBe(200);
    const messages = await as.get<List<Message>>(`/v1/webhook-endpoints/${created.id}/messages`);
    expect(messages.body.data).toHaveLength(1);
    const message = messages.body.data[0]!;
    expect(message).toMatchObject({
      endpointId: created.id,
      eventType: "api_key.revoked",
      status: "pending",
      attempts: 0,
      payload: {
        apiKeyId: key.body.id,
        role: "read_only",
        mode: "live",
        projectId: null,
        link: "/v1/api-keys",
      },
    });
    // As if the webhooks Worker had given up on it and dispatched it long ago.
    await stack.db
      .updateTable("webhook_deliveries")
      .set({ status: "failed", attempts: 9 })
      .where("message_id", "=", message.id)
      .execute();
    await stack.db
      .updateTable("webhook_messages")
      .set({ dispatched_at: new Date() })
      .where("id", "=", message.id)
      .execute();
    const failed = await as.get<List<Message>>(`/v1/webhook-endpoints/${created.id}/messages?status=failed`);
    expect(failed.body.data.map((m) => m.id)).toEqual([message.id]);

    const resent = await as.post<unknown, Message>(
      `/v1/webhook-endpoints/${created.id}/messages/${message.id}/resend`,
    );
    expect(resent.status, resent.text).toBe(202);
    expect(resent.body).toMatchObject({ id: message.id, status: "pending", attempts: 9 });
    // Due now: the sweep's retry step puts it on the Queue at its next run.
    const row = await stack.db
      .selectFrom("webhook_deliveries")
      .select("next_attempt_at")
      .where("message_id", "=", message.id)
      .executeTakeFirstOrThrow();
    expect(row.next_attempt_at?.getTime()).toBeLessThanOrEqual(Date.now());
    const audit = await stack.db
      .selectFrom("audit_log")
      .select("action")
      .where("org_id", "=", tenant.orgId)
      .where("action", "=", "webhook_message.resent")
      .execute();
    expect(audit).toHaveLength(1);

    expect(
      (await as.post(`/v1/webhook-endpoints/${created.id}/messages/msg_doesNotExist/resend`)).status,
    ).toBe(404);
    await as.patch(`/v1/webhook-endpoints/${created.id}`, { enabled: false });
    const disabled = await as.post(`/v1/webhook-endpoints/${created.id}/messages/${message.id}/resend`);
    expect(disabled.status).toBe(409);
    expect(disabled.error.code).toBe("conflict");
  });

  test("another org cannot list or re-send this org's messages (404), even naming the message id", async () => {
    const { as } = await owner();
    const created = await create(as, { url: receiver.url(path()) });
    const key = await as.post<unknown, { secret: string }>("/v1/api-keys", { name: "k", role: "read_only" });
    rememberSecret(key.body.secret);
    const [message] = (await as.get<List<Message>>(`/v1/webhook-endpoints/${created.id}/messages`)).body.data;
    const outsider = await owner();
    const theirs = await create(outsider.as, { url: receiver.url(path()) });
    expect(
      (await outsider.as.post(`/v1/webhook-endpoints/${theirs.id}/messages/${message!.id}/resend`)).status,
    ).toBe(404);
    expect((await outsider.as.get(`/v1/webhook-endpoints/${created.id}/messages`)).status).toBe(404);
  });
});

test("GET /v1/webhook-event-types lists every type of the catalogue with the JSON Schema of its data", async () => {
  const { as } = await owner();
  const answer =
    await as.get<List<{ type: string; description: string; schema: Record<string, unknown> }>>(
      "/v1/webhook-event-types",
    );
  expect(answer.status).toBe(200);
  expect(answer.body.data.map((t) => t.type)).toEqual(WEBHOOK_EVENT_TYPES);
  for (const t of answer.body.data) {
    expect(t.description.length, t.type).toBeGreaterThan(10);
    expect(t.schema, t.type).toMatchObject({ type: "object", additionalProperties: false });
    expect(Object.keys(t.schema.properties as object).length, t.type).toBeGreaterThan(0);
  }
  for (const required of [
    "deletion_request.completed",
    "deletion_request.failed",
    "destination.failing",
    "destination.recovered",
    "api_key.created",
    "api_key.revoked",
    "project.archived",
    "webhook_endpoint.disabled",
    "webhook.test",
  ]) {
    expect(WEBHOOK_EVENT_TYPES).toContain(required);
  }
});
