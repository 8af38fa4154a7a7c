import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { CONTAINER_URL_SECONDS } from "../../../functions/content/containerVerbs";
import { DestinationCache, loadRelayDestinations } from "../../../functions/relay/destinationCache";
import { enabledRelayTargets } from "../../../functions/relay/enqueueRelays";
import { createS3Store } from "../../../functions/storage/objectStore";
import { roleUrl } from "../../../scripts/local/migrate";
import { createNodeDb } from "../../../scripts/local/node-db";
import { withTenant } from "../../../shared/db";
import { type Api, api, errorDetails } from "../../support/api";
import { type ApiTenant, createApiTenant } from "../../support/apiTenant";
import type { Project } from "../../support/apiTypes";
import { insertTestContainer } from "../../support/contentContainers";
import { testDatabaseUrl } from "../../support/database";
import { rememberSecret } from "../../support/issuedSecrets";
import { type LocalS3, startLocalS3 } from "../../support/s3";
import { findInTables } from "../../support/scan";
import { type Stack, startStack, TEST_DESTINATION_KEYRING } from "../../support/stack";

// Layers, content containers and the creative library through the API Worker in workerd, real Postgres and
// two S3 servers: the stack's (our media bucket) and a second one standing for a partner's own bucket.

const PARTNER_BUCKET = "partner-media";

let stack: Stack;
let partner: LocalS3;
beforeAll(async () => {
  partner = await startLocalS3({ extraBuckets: [PARTNER_BUCKET] });
  stack = await startStack({ consumer: "recorder" });
});
afterAll(async () => {
  await stack?.dispose();
  await partner?.dispose();
});

const partnerBucket = () =>
  createS3Store({
    endpoint: partner.endpoint,
    bucket: PARTNER_BUCKET,
    region: "us-east-1",
    accessKeyId: "S3RVER",
    secretAccessKey: "S3RVER",
  });

interface Org {
  owner: ApiTenant;
  as: Api;
  projectId: string;
}

async function org(): Promise<Org> {
  const owner = await createApiTenant(stack.db);
  const as = api(stack, owner.secret);
  const project = await as.post<unknown, Project>("/v1/projects", { name: "Library app" });
  expect(project.status, project.text).toBe(201);
  return { owner, as, projectId: project.body.id };
}

interface Layer {
  layer: string;
  enabled: boolean;
  settings: Record<string, unknown>;
  updatedAt: string | null;
}
interface Container {
  id: string;
  kind: string;
  storageMode: string;
  location: { bucket: string; key: string };
  expiresAt: string | null;
  download?: { url: string | null; expiresAt: string | null; unavailableReason: string | null };
}
interface AdsContent {
  id: string;
  status: string;
  containerIds: string[];
}

const auditActions = async (orgId: string, action: string) =>
  (
    await stack.db
      .selectFrom("audit_log")
      .select("resource_id")
      .where("org_id", "=", orgId)
      .where("action", "=", action)
      .execute()
  ).map((r) => r.resource_id);

describe("layers", () => {
  test("defaults, a switch (audited once, idempotent), unknown layers and credential settings refused", async () => {
    const { owner, as, projectId } = await org();
    const listed = await as.get<{ data: Layer[] }>(`/v1/projects/${projectId}/layers`);
    expect(listed.status).toBe(200);
    expect(listed.body.data.map((l) => [l.layer, l.enabled])).toEqual([
      ["attribution", true],
      ["content", false],
    ]);

    const on = await as.put<unknown, Layer>(`/v1/projects/${projectId}/layers/content`, {
      enabled: true,
      settings: { brand: "Acme" },
    });
    expect(on.status, on.text).toBe(200);
    expect(on.body).toMatchObject({ layer: "content", enabled: true, settings: { brand: "Acme" } });
    const again = await as.put<unknown, Layer>(`/v1/projects/${projectId}/layers/content`, { enabled: true });
    expect(again.body).toEqual(on.body);
    expect(await auditActions(owner.orgId, "project_layer.updated")).toEqual([`${projectId}/content`]);

    const unknown = await as.put(`/v1/projects/${projectId}/layers/constructor`, { enabled: true });
    expect(unknown.status).toBe(404);
    expect(unknown.error.code).toBe("not_found");
    expect(unknown.error.message).toContain("attribution, content");

    const secret = await as.put(`/v1/projects/${projectId}/layers/content`, {
      enabled: true,
      settings: { apiKey: "sk-should-never-be-stored" },
    });
    expect(secret.status).toBe(400);
    expect(await findInTables(stack.db, ["sk-should-never-be-stored"])).toEqual([]);
  });

  test("attribution off: destination create, update and test-send answer 409 layer_disabled; the relay reads it", async () => {
    const { owner, as, projectId } = await org();
    const meta = { datasetId: "123456789012345", accessToken: "EAAlayersLayerTestToken000000000000" };
    rememberSecret(meta.accessToken);
    expect((await as.put(`/v1/projects/${projectId}/destinations/meta`, meta)).status).toBe(201);

    // The consumer (which queues relays) and the relay Worker (which sends them), each as its own role.
    const ownerUrl = testDatabaseUrl();
    const consumerDb = createNodeDb(roleUrl(ownerUrl, "layers_consumer"), 1);
    const relayDb = createNodeDb(roleUrl(ownerUrl, "layers_relay"), 1);
    const wanted = new Map([[`${projectId} meta`, { projectId, kind: "meta" as const }]]);
    const keyring = {
      currentKeyId: TEST_DESTINATION_KEYRING.DESTINATION_KEY_ID,
      keys: JSON.parse(TEST_DESTINATION_KEYRING.DESTINATION_KEYS) as Record<string, string>,
    };
    const relayEnabled = async () => {
      const loaded = await withTenant(relayDb, owner.orgId, (tx) =>
        loadRelayDestinations(tx, wanted, keyring, new DestinationCache()),
      );
      const d = loaded.get(`${projectId} meta`);
      return d && !(d instanceof Error) ? d.enabled : null;
    };
    try {
      expect(await enabledRelayTargets(consumerDb, owner.orgId, projectId)).toHaveLength(1);
      expect(await relayEnabled()).toBe(true);

      const off = await as.put<unknown, Layer>(`/v1/projects/${projectId}/layers/attribution`, {
        enabled: false,
      });
      expect(off.status, off.text).toBe(200);
      for (const answer of [
        await as.put(`/v1/projects/${projectId}/destinations/meta`, {
          datasetId: meta.datasetId,
          testEventCode: "TEST1",
        }),
        await as.put(`/v1/projects/${projectId}/destinations/tiktok`, {
          pixelCode: "CBCHRKJC77U8JBE2K1EG",
          accessToken: "ttLayerOffToken0000000000000000000",
        }),
        await as.post(`/v1/projects/${projectId}/destinations/meta/test`),
      ]) {
        expect(answer.status, answer.text).toBe(409);
        expect(answer.error.code).toBe("layer_disabled");
      }
      rememberSecret("ttLayerOffToken0000000000000000000");
      // Nothing new is queued, and what was queued before is not sent.
      expect(await enabledRelayTargets(consumerDb, owner.orgId, projectId)).toEqual([]);
      expect(await relayEnabled()).toBe(false);
      // Reading and deleting still work: switching back on needs no reconfiguration.
      expect((await as.get(`/v1/projects/${projectId}/destinations/meta`)).status).toBe(200);

      await as.put(`/v1/projects/${projectId}/layers/attribution`, { enabled: true });
      expect(await enabledRelayTargets(consumerDb, owner.orgId, projectId)).toHaveLength(1);
      expect(await relayEnabled()).toBe(true);
    } finally {
      await consumerDb.destroy();
      await relayDb.destroy();
    }
  });
});

describe("content containers", () => {
  test("list (paged, by kind), get with a signed URL that downloads the bytes, then delete: object and row", async () => {
    const { owner, as, projectId } = await org();
    const made = [];
    for (const kind of ["copy", "image", "copy"] as const) {
      made.push(await insertTestContainer(stack.db, stack.s3.media, { orgId: owner.orgId, projectId, kind }));
    }
    const page1 = await as.get<{ data: Container[]; hasMore: boolean; nextCursor: string }>(
      `/v1/projects/${projectId}/content-containers?limit=2`,
    );
    expect(page1.status, page1.text).toBe(200);
    expect(page1.body.hasMore).toBe(true);
    const page2 = await as.get<{ data: Container[]; hasMore: boolean }>(
      `/v1/projects/${projectId}/content-containers?limit=2&starting_after=${page1.body.nextCursor}`,
    );
    expect([...page1.body.data, ...page2.body.data].map((c) => c.id).sort()).toEqual(
      made.map((m) => m.id).sort(),
    );
    const copies = await as.get<{ data: Container[] }>(
      `/v1/projects/${projectId}/content-containers?kind=copy`,
    );
    expect(copies.body.data.map((c) => c.kind)).toEqual(["copy", "copy"]);
    expect((await as.get(`/v1/projects/${projectId}/content-containers?kind=film`)).status).toBe(400);

    const target = made[0]!;
    const got = await as.get<Container>(`/v1/projects/${projectId}/content-containers/${target.id}`);
    expect(got.status, got.text).toBe(200);
    const url = new URL(got.body.download?.url ?? "");
    expect(url.searchParams.get("X-Amz-Expires")).toBe(String(CONTAINER_URL_SECONDS));
    expect(got.text).not.toContain("S3RVER/"); // no secret in the URL: the credential is the key id only
    const downloaded = await fetch(url);
    expect(downloaded.status).toBe(200);
    expect(new Uint8Array(await downloaded.arrayBuffer())).toEqual(target.bytes);
    // The URL's signature is stored nowhere.
    const signature = url.searchParams.get("X-Amz-Signature") ?? "-";
    expect(await findInTables(stack.db, [signature])).toEqual([]);
    expect(stack.logs.join("\n")).not.toContain(signature);

    const deleted = await as.delete(`/v1/projects/${projectId}/content-containers/${target.id}`);
    expect(deleted.status, deleted.text).toBe(204);
    expect(await stack.s3.media.get(target.objectKey)).toBeUndefined();
    expect((await as.get(`/v1/projects/${projectId}/content-containers/${target.id}`)).status).toBe(404);
    expect(await auditActions(owner.orgId, "content_container.deleted")).toEqual([target.id]);
    // The job's metadata stays (its 400 days), without the container.
    const job = await stack.db
      .selectFrom("content_jobs")
      .select("id")
      .where("id", "=", target.jobId)
      .executeTakeFirst();
    expect(job?.id).toBe(target.jobId);
  });

  test("own-bucket containers: signed and deleted with the partner's config; without it, location only", async () => {
    const { owner, as, projectId } = await org();
    const secret = `partnerSecret/${crypto.randomUUID()}`;
    rememberSecret(secret);
    const config = await as.post<unknown, { id: string }>("/v1/storage-configs", {
      endpoint: partner.endpoint,
      region: "us-east-1",
      bucket: PARTNER_BUCKET,
      prefix: "brand/",
      forcePathStyle: true,
      accessKeyId: "S3RVER",
      secretAccessKey: secret,
    });
    expect(config.status, config.text).toBe(201);
    const own = (prefix: string) =>
      insertTestContainer(stack.db, partnerBucket(), {
        orgId: owner.orgId,
        projectId,
        storageConfigId: config.body.id,
        bucket: PARTNER_BUCKET,
        prefix,
      });
    const first = await own("brand/");
    const got = await as.get<Container>(`/v1/projects/${projectId}/content-containers/${first.id}`);
    expect(got.status, got.text).toBe(200);
    expect(got.text).not.toContain(secret);
    expect(got.body.location).toEqual({ bucket: PARTNER_BUCKET, key: first.objectKey });
    const downloaded = await fetch(got.body.download?.url ?? "");
    expect(new Uint8Array(await downloaded.arrayBuffer())).toEqual(first.bytes);

    expect((await as.delete(`/v1/projects/${projectId}/content-containers/${first.id}`)).status).toBe(204);
    expect(await partnerBucket().get(first.objectKey)).toBeUndefined();

    // The partner deletes the config: the object is theirs now; we show where it is and drop our row.
    const second = await own("brand/");
    expect((await as.delete(`/v1/storage-configs/${config.body.id}`)).status).toBe(204);
    const orphan = await as.get<Container>(`/v1/projects/${projectId}/content-containers/${second.id}`);
    expect(orphan.body.download).toEqual({
      url: null,
      expiresAt: null,
      unavailableReason: "storage_config_deleted",
    });
    expect((await as.delete(`/v1/projects/${projectId}/content-containers/${second.id}`)).status).toBe(204);
    expect(await partnerBucket().get(second.objectKey)).toEqual(second.bytes);
    expect(await findInTables(stack.db, [secret])).toEqual([]);
    expect(stack.logs.join("\n")).not.toContain(secret);
  });

  test("object storage down: 503 storage_unavailable, the container stays, and a retry finishes", async () => {
    const { owner, as, projectId } = await org();
    const made = await insertTestContainer(stack.db, stack.s3.media, { orgId: owner.orgId, projectId });
    const path = `/v1/projects/${projectId}/content-containers/${made.id}`;
    await stack.s3.stop();
    try {
      const failed = await as.delete(path, { idempotencyKey: "delete-once" });
      expect(failed.status, failed.text).toBe(503);
      expect(failed.error.code).toBe("storage_unavailable");
    } finally {
      await stack.s3.start();
    }
    expect((await as.get(path)).status).toBe(200);
    const retried = await as.delete(path, { idempotencyKey: "delete-once" });
    expect(retried.status, retried.text).toBe(204);
    expect(await stack.s3.media.get(made.objectKey)).toBeUndefined();
  });

  test("archiving gives containers archived_at + 90 days, unarchiving clears it, later ones get it too", async () => {
    const { owner, as, projectId } = await org();
    const before = await insertTestContainer(stack.db, stack.s3.media, { orgId: owner.orgId, projectId });
    const archived = await as.post<unknown, Project>(`/v1/projects/${projectId}/archive`);
    expect(archived.status, archived.text).toBe(200);
    const expected = new Date(Date.parse(archived.body.archivedAt ?? "") + 90 * 86_400_000).toISOString();
    const read = async (id: string) =>
      (await as.get<Container>(`/v1/projects/${projectId}/content-containers/${id}`)).body.expiresAt;
    expect(await read(before.id)).toBe(expected);
    const later = await insertTestContainer(stack.db, stack.s3.media, { orgId: owner.orgId, projectId });
    expect(await read(later.id)).toBe(expected);
    expect((await as.post(`/v1/projects/${projectId}/unarchive`)).status).toBe(200);
    expect(await read(before.id)).toBeNull();
    expect(await read(later.id)).toBeNull();
  });

  test("another org's container is a 404 everywhere", async () => {
    const a = await org();
    const b = await org();
    const made = await insertTestContainer(stack.db, stack.s3.media, {
      orgId: a.owner.orgId,
      projectId: a.projectId,
    });
    expect((await b.as.get(`/v1/projects/${a.projectId}/content-containers/${made.id}`)).status).toBe(404);
    expect((await b.as.get(`/v1/projects/${b.projectId}/content-containers/${made.id}`)).status).toBe(404);
    expect((await b.as.delete(`/v1/projects/${b.projectId}/content-containers/${made.id}`)).status).toBe(404);
    expect(await stack.s3.media.get(made.objectKey)).toEqual(made.bytes);
  });
});

describe("ads content", () => {
  test("the library: order kept, containers of the org only, status rules, project use behind the content layer", async () => {
    const { owner, as, projectId } = await org();
    const other = await org();
    const [c1, c2, c3] = await Promise.all(
      [1, 2, 3].map(() => insertTestContainer(stack.db, stack.s3.media, { orgId: owner.orgId, projectId })),
    );
    const foreign = await insertTestContainer(stack.db, stack.s3.media, {
      orgId: other.owner.orgId,
      projectId: other.projectId,
    });
    const created = await as.post<unknown, AdsContent>(
      "/v1/ads-content",
      { name: "Launch", containerIds: [c3!.id, c1!.id] },
      { idempotencyKey: "launch" },
    );
    expect(created.status, created.text).toBe(201);
    expect(created.body).toMatchObject({ status: "draft", containerIds: [c3!.id, c1!.id] });
    const replay = await as.post<unknown, AdsContent>(
      "/v1/ads-content",
      { name: "Launch", containerIds: [c3!.id, c1!.id] },
      { idempotencyKey: "launch" },
    );
    expect(replay.headers.get("Idempotent-Replayed")).toBe("true");
    expect(replay.body.id).toBe(created.body.id);

    const refused = await as.post("/v1/ads-content", { name: "X", containerIds: [c1!.id, foreign.id] });
    expect(refused.status).toBe(404);
    expect(errorDetails(refused.error)[0]?.field).toBe("containerIds.1");
    const twice = await as.post("/v1/ads-content", { name: "X", containerIds: [c1!.id, c1!.id] });
    expect(twice.status).toBe(400);
    const emptyReady = await as.post("/v1/ads-content", { name: "X", containerIds: [], status: "ready" });
    expect(emptyReady.status).toBe(400);

    const id = created.body.id;
    const patched = await as.patch<unknown, AdsContent>(`/v1/ads-content/${id}`, {
      containerIds: [c2!.id, c3!.id, c1!.id],
      status: "ready",
    });
    expect(patched.status, patched.text).toBe(200);
    expect(patched.body.containerIds).toEqual([c2!.id, c3!.id, c1!.id]);
    expect((await other.as.get(`/v1/ads-content/${id}`)).status).toBe(404);
    const listed = await as.get<{ data: AdsContent[] }>("/v1/ads-content?status=ready");
    expect(listed.body.data.map((e) => e.id)).toEqual([id]);

    // Using it in a project needs the content layer.
    const off = await as.put(`/v1/projects/${projectId}/ads-content/${id}`, { status: "active" });
    expect(off.status).toBe(409);
    expect(off.error.code).toBe("layer_disabled");
    await as.put(`/v1/projects/${projectId}/layers/content`, { enabled: true });
    const used = await as.put(`/v1/projects/${projectId}/ads-content/${id}`, { status: "active" });
    expect(used.status, used.text).toBe(201);
    const paused = await as.put<unknown, { status: string }>(`/v1/projects/${projectId}/ads-content/${id}`, {
      status: "paused",
    });
    expect(paused.status).toBe(200);
    expect(paused.body.status).toBe("paused");
    const uses = await as.get<{ data: { adsContentId: string; status: string }[] }>(
      `/v1/projects/${projectId}/ads-content`,
    );
    expect(uses.body.data).toMatchObject([{ adsContentId: id, status: "paused" }]);
    await as.patch(`/v1/ads-content/${id}`, { status: "archived" });
    const archived = await as.put(`/v1/projects/${projectId}/ads-content/${id}`, { status: "active" });
    expect(archived.status).toBe(409);
    expect(archived.error.code).toBe("conflict");

    // Deleting a container takes it out of the entry.
    expect((await as.delete(`/v1/projects/${projectId}/content-containers/${c3!.id}`)).status).toBe(204);
    expect((await as.get<AdsContent>(`/v1/ads-content/${id}`)).body.containerIds).toEqual([c2!.id, c1!.id]);

    expect((await as.delete(`/v1/projects/${projectId}/ads-content/${id}`)).status).toBe(204);
    expect((await as.delete(`/v1/projects/${projectId}/ads-content/${id}`)).status).toBe(404);
    expect((await as.delete(`/v1/ads-content/${id}`)).status).toBe(204);
    expect((await as.get(`/v1/ads-content/${id}`)).status).toBe(404);
    expect(await auditActions(owner.orgId, "ads_content.created")).toEqual([id]);
    expect(await auditActions(owner.orgId, "ads_content.deleted")).toEqual([id]);
  });
});
