import { afterAll, beforeAll, describe, expect, test } from "vitest";
import type { z } from "zod";
import { bearer, createApiTenant } from "../../support/apiTenant";
import { insertTestContainer } from "../../support/contentContainers";
import { rememberSecret } from "../../support/issuedSecrets";
import { documentedSchema } from "../../support/openapiSchema";
import { type Stack, startStack } from "../../support/stack";

// The compiler checks each handler's body against its route's schema, but not for fields a schema does not
// name (TypeScript allows extra properties). These tests call the operations and validate each real answer
// against the document's schema for its status, with undeclared fields refused: what a client generated
// from the document would parse.

let stack: Stack;
beforeAll(async () => {
  // Webhook endpoints may point at plain http on localhost here (the test send finds nothing listening).
  stack = await startStack({ consumer: "recorder", apiVars: { WEBHOOK_ALLOW_LOCAL_HTTP: "true" } });
});
afterAll(() => stack?.dispose());

type JsonObject = Record<string, unknown>;
interface OpenApiDocument {
  paths: Record<
    string,
    Record<
      string,
      { operationId: string; responses: Record<string, { content?: Record<string, { schema: JsonObject }> }> }
    >
  >;
}

describe("real answers match the OpenAPI document", () => {
  test("every operation's answer validates against the schema documented for its status", async () => {
    const doc = (await (await stack.api("/v1/openapi.json")).json()) as OpenApiDocument;
    const owner = await createApiTenant(stack.db);
    const called = new Set<string>();
    const problems: string[] = [];

    /** Calls `path` (documented as `template`) and checks the answer; returns its body. */
    async function call(method: string, template: string, path: string, body?: unknown) {
      const response = await stack.api(path, {
        method,
        headers: bearer(owner.secret),
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
      const operation = doc.paths[template]?.[method.toLowerCase()];
      expect(operation, `${method} ${template} is documented`).toBeDefined();
      called.add(operation!.operationId);
      const label = `${operation!.operationId} → ${response.status}`;
      expect(response.status, label).toBeLessThan(300);
      const documented = operation!.responses[String(response.status)];
      expect(documented, `${label} is a documented status`).toBeDefined();
      if (response.status === 204) {
        expect(documented!.content, label).toBeUndefined();
        return undefined;
      }
      const json = (await response.json()) as JsonObject;
      const schema = documentedSchema(doc, documented!.content!["application/json"]!.schema);
      const strict = documentedSchema(doc, documented!.content!["application/json"]!.schema, {
        closed: true,
      });
      for (const [name, check] of [
        ["schema", schema],
        ["no undeclared field", strict],
      ] as [string, z.ZodType][]) {
        const parsed = check.safeParse(json);
        if (!parsed.success) problems.push(`${label} (${name}): ${parsed.error.message}`);
      }
      return json;
    }

    const project = (await call("POST", "/v1/projects", "/v1/projects", { name: "Answers app" }))!;
    const p = `/v1/projects/${project.id}`;
    await call("GET", "/v1/projects", "/v1/projects");
    await call("GET", "/v1/projects/{projectId}", p);
    await call("PATCH", "/v1/projects/{projectId}", p, { eventRetentionDays: 90 });
    await call("POST", "/v1/projects/{projectId}/archive", `${p}/archive`);
    await call("POST", "/v1/projects/{projectId}/unarchive", `${p}/unarchive`);
    await call("GET", "/v1/org", "/v1/org");
    await call("PATCH", "/v1/org", "/v1/org", { name: "Answers org" });

    const key = (await call("POST", "/v1/api-keys", "/v1/api-keys", { name: "ci", role: "developer" }))!;
    await call("GET", "/v1/api-keys", "/v1/api-keys");
    const rotated = (await call("POST", "/v1/api-keys/{keyId}/rotate", `/v1/api-keys/${key.id}/rotate`, {}))!;
    await call("POST", "/v1/api-keys/{keyId}/revoke", `/v1/api-keys/${rotated.id}/revoke`);

    const sdkKey = (await call("POST", "/v1/projects/{projectId}/sdk-keys", `${p}/sdk-keys`))!;
    await call("GET", "/v1/projects/{projectId}/sdk-keys", `${p}/sdk-keys`);
    await call(
      "POST",
      "/v1/projects/{projectId}/sdk-keys/{keyId}/revoke",
      `${p}/sdk-keys/${sdkKey.id}/revoke`,
    );

    const member = (await call("POST", "/v1/members", "/v1/members", {
      email: "answers@example.com",
      name: "Ada",
      role: "developer",
    }))!;
    await call("GET", "/v1/members", "/v1/members");
    await call("PATCH", "/v1/members/{memberId}", `/v1/members/${member.id}`, { role: "admin" });
    await call("DELETE", "/v1/members/{memberId}", `/v1/members/${member.id}`);

    const destinations = "/v1/projects/{projectId}/destinations";
    await call("PUT", `${destinations}/meta`, `${p}/destinations/meta`, {
      datasetId: "123456789012345",
      accessToken: "EAAGm0PX4ZCpsBAExampleAccessToken0000",
    });
    await call("PUT", `${destinations}/tiktok`, `${p}/destinations/tiktok`, {
      pixelCode: "CBCHRKJC77U8JBE2K1EG",
      accessToken: "exampleTikTokAccessToken000000000000000a",
    });
    await call("PUT", `${destinations}/apple-search-ads`, `${p}/destinations/apple-search-ads`, {
      enabled: true,
    });
    await call("GET", destinations, `${p}/destinations`);
    await call("GET", `${destinations}/{kind}`, `${p}/destinations/meta`);
    await call("GET", `${destinations}/{kind}/deliveries`, `${p}/destinations/meta/deliveries`);
    await call(
      "POST",
      `${destinations}/{kind}/dead-letters/replay`,
      `${p}/destinations/meta/dead-letters/replay`,
    );
    await call("DELETE", `${destinations}/{kind}`, `${p}/destinations/tiktok`);

    const users = "/v1/projects/{projectId}/events/users/{userId}";
    await call("GET", users, `${p}/events/users/ada`);
    await call("POST", "/v1/projects/{projectId}/users/lookup", `${p}/users/lookup`, {
      email: "ada@example.com",
    });
    const deletion = (await call(
      "POST",
      "/v1/projects/{projectId}/deletion-requests",
      `${p}/deletion-requests`,
      {
        userId: "ada",
        suppress: true,
      },
    ))!;
    await call("DELETE", users, `${p}/events/users/grace`);
    await call("GET", "/v1/deletion-requests/{id}", `/v1/deletion-requests/${deletion.id}`);
    await call("GET", "/v1/deletion-requests", "/v1/deletion-requests");
    await call("GET", "/v1/projects/{projectId}/suppressions", `${p}/suppressions`);
    await call(
      "DELETE",
      "/v1/projects/{projectId}/suppressions/{kind}/{value}",
      `${p}/suppressions/users/ada`,
    );
    // Content jobs: the layer switched on through the layers API, one async job (202) and one sync job
    // (200 with its container and download, the container routes' representation).
    await call("GET", "/v1/projects/{projectId}/layers", `${p}/layers`);
    await call("PUT", "/v1/projects/{projectId}/layers/{layer}", `${p}/layers/content`, {
      enabled: true,
      settings: { brand: "Answers" },
    });
    const job = (await call("POST", "/v1/projects/{projectId}/content-jobs", `${p}/content-jobs`, {
      kind: "copy",
      brief: "Answers copy",
    }))!;
    const synced = (await call("POST", "/v1/projects/{projectId}/content-jobs", `${p}/content-jobs`, {
      kind: "copy",
      brief: "Answers copy, waited for",
      async: false,
    })) as { job: { id: string }; container: { download: { url: string | null } } | null };
    expect(synced.container?.download.url).toMatch(/X-Amz-Signature=/);
    await call("GET", "/v1/projects/{projectId}/content-jobs", `${p}/content-jobs`);
    await call("GET", "/v1/projects/{projectId}/content-jobs/{jobId}", `${p}/content-jobs/${job.id}`);
    const gotSynced = (await call(
      "GET",
      "/v1/projects/{projectId}/content-jobs/{jobId}",
      `${p}/content-jobs/${synced.job.id}`,
    )) as { container: { download: { url: string | null } } | null };
    expect(gotSynced.container?.download.url).toMatch(/X-Amz-Signature=/);
    // A storage config on the stack's own S3 server: its check answers ok (a probe written and deleted).
    const storage = (await call("POST", "/v1/storage-configs", "/v1/storage-configs", {
      endpoint: stack.s3.endpoint,
      region: "us-east-1",
      bucket: "layers-audit-archive",
      prefix: "openapi-answers",
      forcePathStyle: true,
      accessKeyId: "S3RVER",
      secretAccessKey: "answersStorageSecret0000000000",
    }))!;
    await call("GET", "/v1/storage-configs", "/v1/storage-configs");
    await call("GET", "/v1/storage-configs/{id}", `/v1/storage-configs/${storage.id}`);
    const checked = (await call(
      "POST",
      "/v1/storage-configs/{id}/check",
      `/v1/storage-configs/${storage.id}/check`,
    ))!;
    expect(checked.status, JSON.stringify(checked)).toBe("ok");
    await call("DELETE", "/v1/storage-configs/{id}", `/v1/storage-configs/${storage.id}`);
    await call("GET", "/v1/webhook-event-types", "/v1/webhook-event-types");
    const hook = (await call("POST", "/v1/webhook-endpoints", "/v1/webhook-endpoints", {
      url: "http://127.0.0.1:9/answers",
      eventTypes: ["api_key.created"],
    }))!;
    rememberSecret(hook.secret);
    const h = `/v1/webhook-endpoints/${hook.id}`;
    await call("GET", "/v1/webhook-endpoints", "/v1/webhook-endpoints");
    await call("GET", "/v1/webhook-endpoints/{id}", h);
    await call("PATCH", "/v1/webhook-endpoints/{id}", h, { description: "Answers" });
    rememberSecret(
      (await call("POST", "/v1/webhook-endpoints/{id}/rotate-secret", `${h}/rotate-secret`, {}))!.secret,
    );
    await call("POST", "/v1/webhook-endpoints/{id}/test", `${h}/test`);
    await call("GET", "/v1/webhook-endpoints/{id}/attempts", `${h}/attempts`);
    rememberSecret(
      (await call("POST", "/v1/api-keys", "/v1/api-keys", { name: "emits", role: "read_only" }))!.secret,
    );
    const messages = (await call("GET", "/v1/webhook-endpoints/{id}/messages", `${h}/messages`))!;
    const [message] = messages.data as { id: string }[];
    await call(
      "POST",
      "/v1/webhook-endpoints/{id}/messages/{messageId}/resend",
      `${h}/messages/${message!.id}/resend`,
    );
    await call("DELETE", "/v1/webhook-endpoints/{id}", h);

    // Generated content (a container made as the content workflow leaves one) and the library.
    const made = await insertTestContainer(stack.db, stack.s3.media, {
      orgId: owner.orgId,
      projectId: project.id as string,
      kind: "image",
    });
    const containers = "/v1/projects/{projectId}/content-containers";
    await call("GET", containers, `${p}/content-containers?kind=image`);
    await call("GET", `${containers}/{containerId}`, `${p}/content-containers/${made.id}`);
    const entry = (await call("POST", "/v1/ads-content", "/v1/ads-content", {
      name: "Answers creative",
      containerIds: [made.id],
    }))!;
    await call("GET", "/v1/ads-content", "/v1/ads-content");
    await call("GET", "/v1/ads-content/{id}", `/v1/ads-content/${entry.id}`);
    await call("PATCH", "/v1/ads-content/{id}", `/v1/ads-content/${entry.id}`, { status: "ready" });
    const uses = "/v1/projects/{projectId}/ads-content";
    await call("PUT", `${uses}/{adsContentId}`, `${p}/ads-content/${entry.id}`, { status: "active" });
    await call("PUT", `${uses}/{adsContentId}`, `${p}/ads-content/${entry.id}`, { status: "paused" });
    await call("GET", uses, `${p}/ads-content`);
    await call("DELETE", `${uses}/{adsContentId}`, `${p}/ads-content/${entry.id}`);
    await call("DELETE", "/v1/ads-content/{id}", `/v1/ads-content/${entry.id}`);
    await call("DELETE", `${containers}/{containerId}`, `${p}/content-containers/${made.id}`);

    await call("GET", "/v1/audit-log", "/v1/audit-log");
    await call("GET", "/v1/request-logs", "/v1/request-logs");
    const orgExport = (await call("POST", "/v1/org/exports", "/v1/org/exports", { includeEvents: true }))!;
    await call("GET", "/v1/org/exports", "/v1/org/exports");
    await call("GET", "/v1/org/exports/{id}", `/v1/org/exports/${orgExport.id}`);

    // Project and org deletion (issue 15); the org's deletion last: it revokes this key.
    const doomed = (await call("POST", "/v1/projects", "/v1/projects", { name: "Doomed" }))!;
    await call("POST", "/v1/projects/{projectId}/archive", `/v1/projects/${doomed.id}/archive`);
    const projectDeletion = (await call("DELETE", "/v1/projects/{projectId}", `/v1/projects/${doomed.id}`))!;
    await call("GET", "/v1/project-deletions/{deletionId}", `/v1/project-deletions/${projectDeletion.id}`);
    // `confirm` is the org's name as the PATCH above left it.
    await call("DELETE", "/v1/org", "/v1/org", { confirm: "Answers org" });

    expect(problems).toEqual([]);
    // Every operation but the one that calls an ad platform (destinations.test-send tests cover it).
    const all = Object.values(doc.paths).flatMap((item) => Object.values(item).map((o) => o.operationId));
    expect(all.filter((id) => !called.has(id))).toEqual(["testDestination"]);
  });
});
