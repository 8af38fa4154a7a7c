import { randomUUID } from "node:crypto";
import { describe, expect, test } from "vitest";
import { ROLES, type Role } from "../../shared/roles";
import { type Answer, type Api, api, type Method, openApiDocument } from "./api";
import { type ApiTenant, addApiKey, createApiTenant } from "./apiTenant";
import type { CreatedApiKey, DeletionRequest, Member, Project, StorageConfig } from "./apiTypes";
import { insertTestContainer } from "./contentContainers";
import { rememberSecret } from "./issuedSecrets";
import { orgSnapshot } from "./orgSnapshot";
import type { Stack } from "./stack";
import { createTenant } from "./tenant";

// The security cases every route of the partner API must pass, in one place. Each resource's tests call
// describeRouteSecurity(stack, "<OpenAPI tag>"), which runs, for every operation the OpenAPI document lists
// under that tag, in a fresh org and with a request that is otherwise valid (the last step proves it):
//   no key, a malformed header, another kind of secret, an unknown, revoked, rotated-out or expired key → 401
//   every role below the route's x-required-role → 403
//   another org's owner key → 404 on this org's ids (never 403, which would confirm they exist), or, on a
//     route without ids, its own org's answer with nothing of this org in it
//   a key restricted to another project of the org → 403 on org-wide-only routes (x-org-wide-key-only),
//     404 on this project's ids, and nothing of this project in any other answer
//   the required role itself → the route's success (so each refusal above was a refusal, not a bad request)
// and after each refused request every row the org owns (orgSnapshot: audit log and idempotency keys
// included) is as it was. A documented operation without a case here fails its tag's suite, and
// routeSecurity.coverage.test.ts fails when a tag has no suite: a new route cannot go unchecked.

export interface SecurityTenant {
  stack: Stack;
  orgId: string;
  owner: ApiTenant;
  /** The owner key's calls, for setting up what a request needs. */
  as: Api;
  /** The project the route acts on. */
  projectId: string;
  /** Another project of the same org (the restricted key's own). */
  otherProjectId: string;
  sdkKey: string;
  sdkKeyId: string;
}

export interface RouteRequest {
  path: string;
  body?: unknown;
  /** Ids of this org's resources the call names or could reveal; outsiders must never see them. */
  ids?: string[];
}

export interface RouteCase {
  /** Makes what the call needs in the fresh org and returns a valid request. */
  setup(t: SecurityTenant): Promise<RouteRequest>;
  /** The allowed call's status, where the route declares several successes. */
  okStatus?: number;
}

const meta = { datasetId: "123456789012345", accessToken: "EAAsecurityProbeToken00000000000000" };
const tiktok = { pixelCode: "CBCHRKJC77U8JBE2K1EG", accessToken: "ttSecurityProbeToken000000000000000" };
/**
 * A storage config whose endpoint nothing listens on (the check answers 200 `failed`, endpoint_unreachable,
 * without leaving the machine).
 */
const storageConfig = {
  name: "Security probe bucket",
  endpoint: "http://127.0.0.1:9",
  region: "us-east-1",
  bucket: "security-probe",
  forcePathStyle: true,
  accessKeyId: "SECURITYPROBEKEYID00",
  secretAccessKey: "securityProbeStorageSecret0000000000000",
};
/** The destination tokens the suite sends: tests assert they never come back in any answer or log. */
export const SECURITY_PROBE_TOKENS = [meta.accessToken, tiktok.accessToken, storageConfig.secretAccessKey];

async function ok<T>(answer: Promise<Answer<T>>, status: number): Promise<T> {
  const got = await answer;
  expect(got.status, got.text).toBe(status);
  return got.body;
}

async function withMeta(t: SecurityTenant): Promise<void> {
  rememberSecret(meta.accessToken);
  await ok(t.as.put(`/v1/projects/${t.projectId}/destinations/meta`, meta), 201);
}

async function withStorageConfig(t: SecurityTenant): Promise<string> {
  rememberSecret(storageConfig.secretAccessKey);
  const created = await ok(
    t.as.post<typeof storageConfig, StorageConfig>("/v1/storage-configs", storageConfig),
    201,
  );
  return created.id;
}

async function deletionRequest(t: SecurityTenant, suppress = false): Promise<string> {
  const body = { userId: "user-security", suppress };
  const created = await ok(
    t.as.post<typeof body, DeletionRequest>(`/v1/projects/${t.projectId}/deletion-requests`, body),
    202,
  );
  return created.id;
}

/** A receiver address where nothing listens: the test send gets connection_failed, quickly, and 200. */
export const SECURITY_WEBHOOK_URL = "http://127.0.0.1:9/layers-webhook";

/** A webhook endpoint of the org (the stack must allow plain http to localhost: WEBHOOK_ALLOW_LOCAL_HTTP). */
async function webhookEndpoint(t: SecurityTenant): Promise<string> {
  const created = await ok(
    t.as.post<unknown, { id: string; secret: string }>("/v1/webhook-endpoints", {
      url: SECURITY_WEBHOOK_URL,
      eventTypes: ["api_key.created"],
    }),
    201,
  );
  rememberSecret(created.secret);
  return created.id;
}

/** An endpoint with one message: an API key created through the API emits api_key.created to it. */
async function webhookMessage(t: SecurityTenant): Promise<{ id: string; messageId: string }> {
  const id = await webhookEndpoint(t);
  const key = await ok(
    t.as.post<unknown, CreatedApiKey>("/v1/api-keys", { name: "emits", role: "read_only" }),
    201,
  );
  rememberSecret(key.secret);
  const list = await ok(t.as.get<{ data: { id: string }[] }>(`/v1/webhook-endpoints/${id}/messages`), 200);
  expect(list.data).toHaveLength(1);
  return { id, messageId: list.data[0]!.id };
}

/**
 * The project's content layer switched on (through the layers API, with the owner's key) and, with `job`,
 * one finished content job written directly: no Workflow runs behind it to change the org's rows mid-suite.
 */
async function withContent(t: SecurityTenant, job = false): Promise<string | undefined> {
  await ok(t.as.put(`/v1/projects/${t.projectId}/layers/content`, { enabled: true }), 200);
  if (!job) return undefined;
  const id = `cjob_security${randomUUID().replaceAll("-", "").slice(0, 12)}`;
  await t.stack.db
    .insertInto("content_jobs")
    .values({
      id,
      org_id: t.orgId,
      project_id: t.projectId,
      kind: "copy",
      status: "failed",
      storage_mode: "cloud",
      async: true,
      error_code: "provider_unavailable",
      finished_at: new Date(),
    })
    .execute();
  return id;
}

/** A content container of the route's project, its object in the stack's media bucket. */
async function container(t: SecurityTenant): Promise<string> {
  const made = await insertTestContainer(t.stack.db, t.stack.s3.media, {
    orgId: t.orgId,
    projectId: t.projectId,
  });
  return made.id;
}

/** An ads content entry of the org, made of one container. */
async function adsContent(t: SecurityTenant): Promise<string> {
  const created = await ok(
    t.as.post<unknown, { id: string }>("/v1/ads-content", {
      name: "Security probe creative",
      containerIds: [await container(t)],
    }),
    201,
  );
  return created.id;
}

/** An entry in use by the route's project (its content layer switched on first). */
async function adsContentInUse(t: SecurityTenant): Promise<string> {
  await ok(t.as.put(`/v1/projects/${t.projectId}/layers/content`, { enabled: true }), 200);
  const id = await adsContent(t);
  await ok(t.as.put(`/v1/projects/${t.projectId}/ads-content/${id}`, { status: "active" }), 201);
  return id;
}

/** One valid request per documented operation ("METHOD /path" as in the OpenAPI document). */
export const ROUTE_CASES: Record<string, RouteCase> = {
  "POST /v1/projects": { setup: async () => ({ path: "/v1/projects", body: { name: "New app" } }) },
  "GET /v1/projects": { setup: async (t) => ({ path: "/v1/projects", ids: [t.projectId] }) },
  "GET /v1/projects/{projectId}": { setup: async (t) => ({ path: `/v1/projects/${t.projectId}` }) },
  "PATCH /v1/projects/{projectId}": {
    setup: async (t) => ({
      path: `/v1/projects/${t.projectId}`,
      body: { name: "Renamed", eventRetentionDays: 30 },
    }),
  },
  "POST /v1/projects/{projectId}/archive": {
    setup: async (t) => ({ path: `/v1/projects/${t.projectId}/archive` }),
  },
  "POST /v1/projects/{projectId}/unarchive": {
    setup: async (t) => {
      await ok(t.as.post(`/v1/projects/${t.projectId}/archive`), 200);
      return { path: `/v1/projects/${t.projectId}/unarchive` };
    },
  },

  "POST /v1/api-keys": {
    setup: async () => ({ path: "/v1/api-keys", body: { name: "CI", role: "developer" } }),
  },
  "GET /v1/api-keys": { setup: async (t) => ({ path: "/v1/api-keys", ids: [t.owner.keyId] }) },
  "POST /v1/api-keys/{keyId}/rotate": {
    setup: async (t) => {
      const target = await addApiKey(t.stack.db, t.orgId, "developer");
      return { path: `/v1/api-keys/${target.keyId}/rotate`, body: { gracePeriodSeconds: 0 } };
    },
  },
  "POST /v1/api-keys/{keyId}/revoke": {
    setup: async (t) => {
      const target = await addApiKey(t.stack.db, t.orgId, "developer");
      return { path: `/v1/api-keys/${target.keyId}/revoke` };
    },
  },

  "POST /v1/projects/{projectId}/sdk-keys": {
    setup: async (t) => ({ path: `/v1/projects/${t.projectId}/sdk-keys` }),
  },
  "GET /v1/projects/{projectId}/sdk-keys": {
    setup: async (t) => ({ path: `/v1/projects/${t.projectId}/sdk-keys`, ids: [t.sdkKeyId] }),
  },
  "POST /v1/projects/{projectId}/sdk-keys/{keyId}/revoke": {
    setup: async (t) => ({ path: `/v1/projects/${t.projectId}/sdk-keys/${t.sdkKeyId}/revoke` }),
  },

  "GET /v1/org": { setup: async () => ({ path: "/v1/org" }) },
  "PATCH /v1/org": { setup: async () => ({ path: "/v1/org", body: { name: "Renamed org" } }) },
  "POST /v1/org/exports": {
    setup: async () => ({ path: "/v1/org/exports", body: { includeEvents: true } }),
    okStatus: 202,
  },
  "GET /v1/org/exports": {
    setup: async (t) => {
      const created = await ok(t.as.post<unknown, { id: string }>("/v1/org/exports", {}), 202);
      return { path: "/v1/org/exports", ids: [created.id] };
    },
  },
  "GET /v1/org/exports/{id}": {
    setup: async (t) => {
      const created = await ok(t.as.post<unknown, { id: string }>("/v1/org/exports", {}), 202);
      return { path: `/v1/org/exports/${created.id}` };
    },
  },

  "POST /v1/members": {
    setup: async () => ({ path: "/v1/members", body: { email: "new@example.com", role: "developer" } }),
  },
  "GET /v1/members": {
    setup: async (t) => {
      const m = await ok(
        t.as.post<unknown, Member>("/v1/members", { email: "dev@example.com", role: "developer" }),
        201,
      );
      return { path: "/v1/members", ids: [m.id, "dev@example.com"] };
    },
  },
  "PATCH /v1/members/{memberId}": {
    setup: async (t) => {
      const m = await ok(
        t.as.post<unknown, Member>("/v1/members", { email: "dev@example.com", role: "developer" }),
        201,
      );
      return { path: `/v1/members/${m.id}`, body: { role: "read_only" }, ids: ["dev@example.com"] };
    },
  },
  "DELETE /v1/members/{memberId}": {
    setup: async (t) => {
      const m = await ok(
        t.as.post<unknown, Member>("/v1/members", { email: "dev@example.com", role: "developer" }),
        201,
      );
      return { path: `/v1/members/${m.id}`, ids: ["dev@example.com"] };
    },
  },

  "GET /v1/audit-log": { setup: async (t) => ({ path: "/v1/audit-log", ids: [t.owner.keyId] }) },
  "GET /v1/request-logs": {
    setup: async (t) => {
      await ok(t.as.get(`/v1/projects/${t.projectId}`), 200);
      return { path: "/v1/request-logs", ids: [t.owner.keyId] };
    },
  },

  "PUT /v1/projects/{projectId}/destinations/meta": {
    setup: async (t) => {
      rememberSecret(meta.accessToken);
      return { path: `/v1/projects/${t.projectId}/destinations/meta`, body: meta };
    },
    okStatus: 201,
  },
  "PUT /v1/projects/{projectId}/destinations/tiktok": {
    setup: async (t) => {
      rememberSecret(tiktok.accessToken);
      return { path: `/v1/projects/${t.projectId}/destinations/tiktok`, body: tiktok };
    },
    okStatus: 201,
  },
  "PUT /v1/projects/{projectId}/destinations/apple-search-ads": {
    setup: async (t) => ({
      path: `/v1/projects/${t.projectId}/destinations/apple-search-ads`,
      body: { enabled: true },
    }),
    okStatus: 201,
  },
  "GET /v1/projects/{projectId}/destinations": {
    setup: async (t) => {
      await withMeta(t);
      return { path: `/v1/projects/${t.projectId}/destinations` };
    },
  },
  "GET /v1/projects/{projectId}/destinations/{kind}": {
    setup: async (t) => {
      await withMeta(t);
      return { path: `/v1/projects/${t.projectId}/destinations/meta` };
    },
  },
  "DELETE /v1/projects/{projectId}/destinations/{kind}": {
    setup: async (t) => {
      await withMeta(t);
      return { path: `/v1/projects/${t.projectId}/destinations/meta` };
    },
  },
  "POST /v1/projects/{projectId}/destinations/{kind}/test": {
    setup: async (t) => {
      await withMeta(t);
      return { path: `/v1/projects/${t.projectId}/destinations/meta/test` };
    },
  },
  "GET /v1/projects/{projectId}/destinations/{kind}/deliveries": {
    setup: async (t) => ({ path: `/v1/projects/${t.projectId}/destinations/meta/deliveries` }),
  },
  "POST /v1/projects/{projectId}/destinations/{kind}/dead-letters/replay": {
    setup: async (t) => ({ path: `/v1/projects/${t.projectId}/destinations/meta/dead-letters/replay` }),
  },

  "POST /v1/storage-configs": {
    setup: async () => {
      rememberSecret(storageConfig.secretAccessKey);
      return { path: "/v1/storage-configs", body: storageConfig };
    },
  },
  "GET /v1/storage-configs": {
    setup: async (t) => ({ path: "/v1/storage-configs", ids: [await withStorageConfig(t)] }),
  },
  "GET /v1/storage-configs/{id}": {
    setup: async (t) => ({ path: `/v1/storage-configs/${await withStorageConfig(t)}` }),
  },
  "DELETE /v1/storage-configs/{id}": {
    setup: async (t) => ({ path: `/v1/storage-configs/${await withStorageConfig(t)}` }),
  },
  "POST /v1/storage-configs/{id}/check": {
    setup: async (t) => ({ path: `/v1/storage-configs/${await withStorageConfig(t)}/check` }),
  },

  "POST /v1/projects/{projectId}/content-jobs": {
    setup: async (t) => {
      await withContent(t);
      return {
        path: `/v1/projects/${t.projectId}/content-jobs`,
        body: { kind: "copy", brief: "Security probe copy", storage: false, async: false },
      };
    },
  },
  "GET /v1/projects/{projectId}/content-jobs": {
    setup: async (t) => ({
      path: `/v1/projects/${t.projectId}/content-jobs`,
      ids: [(await withContent(t, true)) as string],
    }),
  },
  "GET /v1/projects/{projectId}/content-jobs/{jobId}": {
    setup: async (t) => ({
      path: `/v1/projects/${t.projectId}/content-jobs/${await withContent(t, true)}`,
    }),
  },

  "GET /v1/projects/{projectId}/events/users/{userId}": {
    setup: async (t) => ({ path: `/v1/projects/${t.projectId}/events/users/user-1` }),
  },
  "POST /v1/projects/{projectId}/users/lookup": {
    setup: async (t) => ({
      path: `/v1/projects/${t.projectId}/users/lookup`,
      body: { email: "someone@example.com" },
    }),
  },
  "DELETE /v1/projects/{projectId}/events/users/{userId}": {
    setup: async (t) => ({ path: `/v1/projects/${t.projectId}/events/users/user-1` }),
  },
  "POST /v1/projects/{projectId}/deletion-requests": {
    setup: async (t) => ({
      path: `/v1/projects/${t.projectId}/deletion-requests`,
      body: { userId: "user-1", suppress: true },
    }),
  },
  "GET /v1/deletion-requests/{id}": {
    setup: async (t) => {
      const id = await deletionRequest(t);
      return { path: `/v1/deletion-requests/${id}`, ids: [id] };
    },
  },
  "GET /v1/deletion-requests": {
    setup: async (t) => ({ path: "/v1/deletion-requests", ids: [await deletionRequest(t)] }),
  },
  "GET /v1/projects/{projectId}/suppressions": {
    setup: async (t) => ({
      path: `/v1/projects/${t.projectId}/suppressions`,
      ids: [await deletionRequest(t, true)],
    }),
  },
  "GET /v1/webhook-event-types": { setup: async () => ({ path: "/v1/webhook-event-types" }) },
  "POST /v1/webhook-endpoints": {
    setup: async () => ({
      path: "/v1/webhook-endpoints",
      body: { url: SECURITY_WEBHOOK_URL, projectId: null },
    }),
  },
  "GET /v1/webhook-endpoints": {
    setup: async (t) => ({ path: "/v1/webhook-endpoints", ids: [await webhookEndpoint(t)] }),
  },
  "GET /v1/webhook-endpoints/{id}": {
    setup: async (t) => ({ path: `/v1/webhook-endpoints/${await webhookEndpoint(t)}` }),
  },
  "PATCH /v1/webhook-endpoints/{id}": {
    setup: async (t) => ({
      path: `/v1/webhook-endpoints/${await webhookEndpoint(t)}`,
      body: { description: "Changed", enabled: false },
    }),
  },
  "DELETE /v1/webhook-endpoints/{id}": {
    setup: async (t) => ({ path: `/v1/webhook-endpoints/${await webhookEndpoint(t)}` }),
  },
  "POST /v1/webhook-endpoints/{id}/rotate-secret": {
    setup: async (t) => ({
      path: `/v1/webhook-endpoints/${await webhookEndpoint(t)}/rotate-secret`,
      body: { gracePeriodSeconds: 60 },
    }),
  },
  "POST /v1/webhook-endpoints/{id}/test": {
    setup: async (t) => ({ path: `/v1/webhook-endpoints/${await webhookEndpoint(t)}/test` }),
  },
  "GET /v1/webhook-endpoints/{id}/attempts": {
    setup: async (t) => {
      const id = await webhookEndpoint(t);
      await ok(t.as.post(`/v1/webhook-endpoints/${id}/test`), 200);
      return { path: `/v1/webhook-endpoints/${id}/attempts` };
    },
  },
  "GET /v1/webhook-endpoints/{id}/messages": {
    setup: async (t) => {
      const { id, messageId } = await webhookMessage(t);
      return { path: `/v1/webhook-endpoints/${id}/messages`, ids: [messageId] };
    },
  },
  "POST /v1/webhook-endpoints/{id}/messages/{messageId}/resend": {
    setup: async (t) => {
      const { id, messageId } = await webhookMessage(t);
      return { path: `/v1/webhook-endpoints/${id}/messages/${messageId}/resend` };
    },
  },

  "GET /v1/projects/{projectId}/layers": {
    setup: async (t) => ({ path: `/v1/projects/${t.projectId}/layers` }),
  },
  "PUT /v1/projects/{projectId}/layers/{layer}": {
    setup: async (t) => ({ path: `/v1/projects/${t.projectId}/layers/content`, body: { enabled: true } }),
  },
  "GET /v1/projects/{projectId}/content-containers": {
    setup: async (t) => ({
      path: `/v1/projects/${t.projectId}/content-containers`,
      ids: [await container(t)],
    }),
  },
  "GET /v1/projects/{projectId}/content-containers/{containerId}": {
    setup: async (t) => ({ path: `/v1/projects/${t.projectId}/content-containers/${await container(t)}` }),
  },
  "DELETE /v1/projects/{projectId}/content-containers/{containerId}": {
    setup: async (t) => ({ path: `/v1/projects/${t.projectId}/content-containers/${await container(t)}` }),
  },
  "POST /v1/ads-content": {
    // No container: an outsider's same request makes an empty draft in its own org (a container id of
    // this org would be a 400 there, which says nothing either).
    setup: async () => ({ path: "/v1/ads-content", body: { name: "New creative", containerIds: [] } }),
  },
  "GET /v1/ads-content": { setup: async (t) => ({ path: "/v1/ads-content", ids: [await adsContent(t)] }) },
  "GET /v1/ads-content/{id}": { setup: async (t) => ({ path: `/v1/ads-content/${await adsContent(t)}` }) },
  "PATCH /v1/ads-content/{id}": {
    setup: async (t) => ({ path: `/v1/ads-content/${await adsContent(t)}`, body: { status: "ready" } }),
  },
  "DELETE /v1/ads-content/{id}": { setup: async (t) => ({ path: `/v1/ads-content/${await adsContent(t)}` }) },
  "GET /v1/projects/{projectId}/ads-content": {
    setup: async (t) => ({
      path: `/v1/projects/${t.projectId}/ads-content`,
      ids: [await adsContentInUse(t)],
    }),
  },
  "PUT /v1/projects/{projectId}/ads-content/{adsContentId}": {
    setup: async (t) => {
      await ok(t.as.put(`/v1/projects/${t.projectId}/layers/content`, { enabled: true }), 200);
      return {
        path: `/v1/projects/${t.projectId}/ads-content/${await adsContent(t)}`,
        body: { status: "active" },
      };
    },
    okStatus: 201,
  },
  "DELETE /v1/projects/{projectId}/ads-content/{adsContentId}": {
    setup: async (t) => ({ path: `/v1/projects/${t.projectId}/ads-content/${await adsContentInUse(t)}` }),
  },
  // Project and org deletion (issue 15). The project is archived first (deletion refuses otherwise).
  "DELETE /v1/projects/{projectId}": {
    setup: async (t) => {
      await ok(t.as.post(`/v1/projects/${t.projectId}/archive`), 200);
      return { path: `/v1/projects/${t.projectId}` };
    },
  },
  "GET /v1/project-deletions/{deletionId}": {
    setup: async (t) => {
      await ok(t.as.post(`/v1/projects/${t.projectId}/archive`), 200);
      const deletion = await ok(t.as.delete<{ id: string }>(`/v1/projects/${t.projectId}`), 202);
      return { path: `/v1/project-deletions/${deletion.id}` };
    },
  },
  // Named like every outsider's org (createApiTenant), so the outsider's own call is a valid request
  // that deletes its own org (a route without ids acts on the caller's org) and this org stays untouched.
  "DELETE /v1/org": {
    setup: async (t) => {
      await ok(t.as.patch("/v1/org", { name: "API test org" }), 200);
      return { path: "/v1/org", body: { confirm: "API test org" } };
    },
  },

  "DELETE /v1/projects/{projectId}/suppressions/{kind}/{value}": {
    setup: async (t) => {
      await deletionRequest(t, true);
      return { path: `/v1/projects/${t.projectId}/suppressions/users/user-security` };
    },
  },
};

export interface DocumentedOperation {
  method: Method;
  path: string;
  tags: string[];
  requiredRole: Role;
  orgWide: boolean;
  successes: number[];
}

/** Every operation of the OpenAPI document, with the role and key scope it declares. */
export function documentedOperations(): DocumentedOperation[] {
  const doc = openApiDocument();
  const out: DocumentedOperation[] = [];
  for (const [path, item] of Object.entries(doc.paths ?? {})) {
    for (const [method, op] of Object.entries(item as Record<string, Record<string, unknown>>)) {
      if (!["get", "post", "put", "patch", "delete"].includes(method)) continue;
      out.push({
        method: method.toUpperCase() as Method,
        path,
        tags: (op.tags as string[] | undefined) ?? [],
        requiredRole: op["x-required-role"] as Role,
        orgWide: op["x-org-wide-key-only"] === true,
        successes: Object.keys((op.responses as object | undefined) ?? {})
          .filter((s) => s.startsWith("2"))
          .map(Number),
      });
    }
  }
  return out;
}

/**
 * A fresh org: its owner key, two projects, an SDK key for the first. Made with the suite's own helpers and
 * the API itself, so the suite does not depend on where the backend keeps its functions.
 */
export async function securityTenant(stack: Stack): Promise<SecurityTenant> {
  const tenant = await createTenant(stack.db);
  const owner = await addApiKey(stack.db, tenant.orgId, "owner");
  const as = api(stack, owner.secret);
  const other = await ok(as.post<{ name: string }, Project>("/v1/projects", { name: "Other app" }), 201);
  return {
    stack,
    orgId: tenant.orgId,
    owner,
    as,
    projectId: tenant.projectId,
    otherProjectId: other.id,
    sdkKey: tenant.sdkKey,
    sdkKeyId: tenant.sdkKeyId,
  };
}

/** Keys of the org that no longer work: revoked, rotated out (no grace), and rotated with a grace now over. */
async function deadKeys(t: SecurityTenant) {
  const [revoked, rotated, expiring] = await Promise.all(
    [1, 2, 3].map(() => addApiKey(t.stack.db, t.orgId, "owner")),
  );
  await ok(t.as.post(`/v1/api-keys/${revoked!.keyId}/revoke`), 200);
  for (const [key, gracePeriodSeconds] of [
    [rotated!, 0],
    [expiring!, 60],
  ] as const) {
    await ok(
      t.as.post<unknown, CreatedApiKey>(`/v1/api-keys/${key.keyId}/rotate`, { gracePeriodSeconds }),
      201,
    );
  }
  return { revoked: revoked!.secret, rotated: rotated!.secret, expired: expiring!.secret };
}

const rolesBelow = (role: Role): Role[] => ROLES.slice(ROLES.indexOf(role) + 1);

/** Runs the security cases for every documented operation tagged `tag`. */
export function describeRouteSecurity(stack: () => Stack, tag: string): void {
  const operations = documentedOperations().filter((o) => o.tags.includes(tag));
  describe(`${tag}: route security (401 · 403 per role · 404 across orgs and projects · nothing changes)`, () => {
    test(`the OpenAPI document lists routes tagged ${tag}`, () => {
      expect(operations.length).toBeGreaterThan(0);
    });
    for (const op of operations) {
      test(`${op.method} ${op.path}`, async () => {
        const routeCase = ROUTE_CASES[`${op.method} ${op.path}`];
        expect(
          routeCase,
          `no case for ${op.method} ${op.path} in test/support/routeSecurity.ts`,
        ).toBeDefined();
        await checkRoute(stack(), op, routeCase!);
      });
    }
  });
}

async function checkRoute(stack: Stack, op: DocumentedOperation, routeCase: RouteCase): Promise<void> {
  const label = `${op.method} ${op.path}`;
  expect(ROLES, `${label} declares x-required-role`).toContain(op.requiredRole);
  const t = await securityTenant(stack);
  const request = await routeCase.setup(t);
  const dead = await deadKeys(t);
  const now = new Date();
  const belowKeys = await Promise.all(
    rolesBelow(op.requiredRole).map(
      async (role) => [role, await addApiKey(stack.db, t.orgId, role)] as const,
    ),
  );
  const outsider = await createApiTenant(stack.db);
  const restricted = await addApiKey(stack.db, t.orgId, "owner", t.otherProjectId);
  const allowed = await addApiKey(stack.db, t.orgId, op.requiredRole);

  // Writes carry an Idempotency-Key, the same one throughout: a refusal must not bind it either.
  const idempotencyKey = op.method === "GET" ? undefined : `security-${randomUUID()}`;
  const send = (secret: string | null, options: { headers?: Record<string, string>; now?: Date } = {}) =>
    api(stack, secret).send(op.method, request.path, request.body, { idempotencyKey, ...options });

  const before = await orgSnapshot(stack.db, t.orgId);
  const unchanged = async (why: string) => expect(await orgSnapshot(stack.db, t.orgId), why).toEqual(before);
  // This org's ids the call did not name itself: no refused or outside answer may contain them.
  const hidden = [t.orgId, t.projectId, ...(request.ids ?? [])].filter(
    (id) => !request.path.includes(id) && !JSON.stringify(request.body ?? "").includes(id),
  );
  // Every path parameter of the API names a resource of the org (project, key, member, request).
  const namesThisOrg = /\{\w+\}/.test(op.path);
  const leaksNothing = (answer: Answer<unknown>, why: string) => {
    for (const id of hidden) expect(answer.text, `${why}: leaks ${id}`).not.toContain(id);
  };

  const unauthorized: [string, string | null, { headers?: Record<string, string>; now?: Date }][] = [
    ["no key", null, {}],
    ["no Bearer scheme", null, { headers: { Authorization: t.owner.secret } }],
    ["Basic auth", null, { headers: { Authorization: `Basic ${btoa(`${t.owner.secret}:`)}` } }],
    ["a truncated key", t.owner.secret.slice(0, 20), {}],
    ["the project's SDK key", t.sdkKey, {}],
    ["an unknown key", `lp_live_${randomUUID().replaceAll("-", "")}`, {}],
    ["a revoked key", dead.revoked, {}],
    ["a key rotated out", dead.rotated, {}],
    ["a key past its rotation grace period", dead.expired, { now: new Date(now.getTime() + 3_600_000) }],
  ];
  for (const [why, secret, options] of unauthorized) {
    const answer = await send(secret, options);
    expect(answer.status, `${label}, ${why}: ${answer.text}`).toBe(401);
    expect(answer.error.code).toBe("unauthorized");
    leaksNothing(answer, `${label}, ${why}`);
    await unchanged(`${label}, ${why}`);
  }

  for (const [role, key] of belowKeys) {
    const answer = await send(key.secret);
    expect(answer.status, `${label}, a ${role} key: ${answer.text}`).toBe(403);
    expect(answer.error.code).toBe("forbidden");
    expect(answer.error.message).toContain(`needs ${op.requiredRole}`);
    leaksNothing(answer, `${label}, a ${role} key`);
    await unchanged(`${label}, a ${role} key`);
  }

  const outside = await send(outsider.secret);
  if (namesThisOrg) {
    expect(outside.status, `${label}, another org's key: ${outside.text}`).toBe(404);
    expect(outside.error.code).toBe("not_found");
  } else {
    // Nothing of this org is named: the outsider's call acts on its own org.
    expect(outside.status, `${label}, another org's key: ${outside.text}`).toBeLessThan(400);
  }
  leaksNothing(outside, `${label}, another org's key`);
  await unchanged(`${label}, another org's key`);

  const scoped = await send(restricted.secret);
  if (op.orgWide) {
    expect(scoped.status, `${label}, a key restricted to another project: ${scoped.text}`).toBe(403);
    expect(scoped.error.code).toBe("forbidden");
  } else if (namesThisOrg) {
    expect(scoped.status, `${label}, a key restricted to another project: ${scoped.text}`).toBe(404);
    expect(scoped.error.code).toBe("not_found");
  } else {
    expect(scoped.status, `${label}, a key restricted to another project: ${scoped.text}`).toBeLessThan(400);
  }
  const projectHidden = hidden.filter((id) => id !== t.orgId);
  for (const id of projectHidden)
    expect(scoped.text, `${label}, restricted key: leaks ${id}`).not.toContain(id);
  if (op.orgWide || namesThisOrg) await unchanged(`${label}, a key restricted to another project`);

  // The same request with the route's role goes through: every refusal above was about the caller.
  const success = await send(allowed.secret);
  const expected = routeCase.okStatus ?? op.successes[0];
  expect(op.successes, `${label} documents its success`).toContain(expected);
  expect(success.status, `${label}, a ${op.requiredRole} key: ${success.text}`).toBe(expected);
  expect(success.headers.get("Idempotent-Replayed")).toBeNull();
}
