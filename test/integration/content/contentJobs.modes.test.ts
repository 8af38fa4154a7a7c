import { createHash, randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { CONTAINER_URL_SECONDS } from "../../../functions/content/containerVerbs";
import { createS3Store } from "../../../functions/storage/objectStore";
import { type Api, api } from "../../support/api";
import { bearer } from "../../support/apiTenant";
import {
  anyEventEndpoint,
  type ContentContainerWithDownload,
  type ContentJob,
  type ContentJobResult,
  type ContentOrg,
  contentOrg,
  enableContentLayer,
  jobEnded,
} from "../../support/content";
import { rememberSecret } from "../../support/issuedSecrets";
import { type LocalS3, MEDIA_BUCKET, startLocalS3 } from "../../support/s3";
import { type Stack, startStack } from "../../support/stack";

// Content jobs end to end, each storage mode × sync/async, through the real Workers: the API Worker, the
// content Worker's Workflow (and its in-memory path), the agent Worker with the deterministic local
// provider, real Postgres, our local S3 server and a second one standing for a partner's own bucket.

const PARTNER_BUCKET = "partner-media";
let stack: Stack;
let partner: LocalS3;
beforeAll(async () => {
  partner = await startLocalS3({ extraBuckets: [PARTNER_BUCKET] });
  stack = await startStack({ consumer: "recorder", apiVars: { WEBHOOK_ALLOW_LOCAL_HTTP: "true" } });
});
afterAll(async () => {
  await stack?.dispose();
  await partner?.dispose();
});

const as = (secret: string): Api => api(stack, secret);
const sha256 = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex");
const jobsPath = (o: ContentOrg) => `/v1/projects/${o.projectId}/content-jobs`;

const partnerBucket = () =>
  createS3Store({
    endpoint: partner.endpoint,
    bucket: PARTNER_BUCKET,
    region: "us-east-1",
    accessKeyId: "S3RVER",
    secretAccessKey: "S3RVER",
  });

async function storageConfig(o: ContentOrg): Promise<string> {
  const secret = `partner/${randomUUID().replaceAll("-", "")}Kq7`;
  rememberSecret(secret);
  const created = await as(o.tenant.secret).post<unknown, { id: string }>("/v1/storage-configs", {
    endpoint: partner.endpoint,
    region: "us-east-1",
    bucket: PARTNER_BUCKET,
    prefix: "brand/generated",
    forcePathStyle: true,
    accessKeyId: "S3RVER",
    secretAccessKey: secret,
  });
  expect(created.status, created.text).toBe(201);
  return created.body.id;
}

async function orgKeys(store: { list(prefix: string): Promise<{ keys: string[] }> }, prefix: string) {
  return (await store.list(prefix)).keys;
}

describe("storage true (our bucket)", () => {
  test("async: 202 with the job, then the Workflow stores, records and emits content_job.succeeded", async () => {
    const o = await contentOrg(stack, as);
    await anyEventEndpoint(as(o.tenant.secret));
    const brief = `Trail shoe launch ${randomUUID()}`;
    const started = await as(o.tenant.secret).post<unknown, ContentJob>(jobsPath(o), {
      kind: "copy",
      brief,
      product: { name: "Stride 3", description: "Light and grippy" },
    });
    expect(started.status, started.text).toBe(202);
    expect(started.body).toMatchObject({
      kind: "copy",
      status: "queued",
      storage: { mode: "cloud" },
      async: true,
    });
    const row = await jobEnded(stack.db, started.body.id);
    expect(row.status, row.error_code ?? "").toBe("succeeded");
    expect(row.request_ciphertext).toBeNull();
    expect(row.provider).toBe("local");

    const got = await as(o.tenant.secret).get<ContentJobResult>(`${jobsPath(o)}/${started.body.id}`);
    expect(got.status, got.text).toBe(200);
    const container = got.body.container;
    expect(container).not.toBeNull();
    if (!container) return;
    expect(container.location).toEqual({
      bucket: MEDIA_BUCKET,
      key: `media/${o.tenant.orgId}/${o.projectId}/${container.id}`,
    });
    expect(got.body.job.containerId).toBe(container.id);
    const stored = await stack.s3.media.get(container.location.key);
    expect(stored && sha256(stored)).toBe(container.sha256);
    expect(new TextDecoder().decode(stored)).toContain("Stride 3");
    // The container is exactly what the container route answers; its signed URL downloads the same bytes
    // without an API key, for the one lifetime both routes share.
    const direct = await as(o.tenant.secret).get<ContentContainerWithDownload>(
      `/v1/projects/${o.projectId}/content-containers/${container.id}`,
    );
    expect({ ...container, download: null }).toEqual({ ...direct.body, download: null });
    expect(container.download.unavailableReason).toBeNull();
    expect(container.download.url).toMatch(/X-Amz-Signature=/);
    const signed = new URL(container.download.url as string).searchParams;
    expect(signed.get("X-Amz-Expires")).toBe(String(CONTAINER_URL_SECONDS));
    const signedAt = (signed.get("X-Amz-Date") ?? "").replace(
      /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/,
      "$1-$2-$3T$4:$5:$6Z",
    );
    const lifetime = Date.parse(container.download.expiresAt ?? "") - Date.parse(signedAt);
    // X-Amz-Date has whole seconds and the answer's clock read is a moment earlier than the signer's.
    expect(Math.abs(lifetime / 1000 - CONTAINER_URL_SECONDS)).toBeLessThan(2);
    const download = await fetch(container.download.url as string);
    expect(download.status).toBe(200);
    expect(sha256(new Uint8Array(await download.arrayBuffer()))).toBe(container.sha256);
    // No staging object is left; exactly one container; the event is in the outbox.
    expect(await orgKeys(stack.s3.media, `staging/${o.tenant.orgId}/`)).toEqual([]);
    const containers = await stack.db
      .selectFrom("content_containers")
      .select("id")
      .where("job_id", "=", started.body.id)
      .execute();
    expect(containers).toHaveLength(1);
    const events = await stack.db
      .selectFrom("webhook_messages")
      .select(["event_type", "payload"])
      .where("org_id", "=", o.tenant.orgId)
      .execute();
    expect(events).toEqual([
      {
        event_type: "content_job.succeeded",
        payload: {
          contentJobId: started.body.id,
          projectId: o.projectId,
          kind: "copy",
          status: "succeeded",
          storageMode: "cloud",
          containerId: container.id,
          link: `/v1/projects/${o.projectId}/content-jobs/${started.body.id}`,
        },
      },
    ]);
    const list = await as(o.tenant.secret).get<{ data: ContentJob[] }>(jobsPath(o));
    expect(list.body.data.map((j) => [j.id, j.status, j.containerId])).toEqual([
      [started.body.id, "succeeded", container.id],
    ]);
  });

  test("sync: 200 with the job and its container (signed URL); a replay keeps no URL", async () => {
    const o = await contentOrg(stack, as);
    const key = randomUUID();
    const body = { kind: "image", brief: "A red sneaker on a mountain", async: false };
    const done = await as(o.tenant.secret).post<unknown, ContentJobResult>(jobsPath(o), body, {
      idempotencyKey: key,
    });
    expect(done.status, done.text).toBe(200);
    expect(done.body.job.status).toBe("succeeded");
    expect(done.body.container?.mediaType).toBe("image/png");
    const png = await stack.s3.media.get(done.body.container?.location.key ?? "");
    expect(png && [...png.subarray(1, 4)]).toEqual([0x50, 0x4e, 0x47]);
    expect(done.body.container?.download.url).toMatch(/X-Amz-Signature=/);
    expect(done.body.container?.download.unavailableReason).toBeNull();
    const replay = await as(o.tenant.secret).post<unknown, ContentJobResult>(jobsPath(o), body, {
      idempotencyKey: key,
    });
    expect(replay.status).toBe(200);
    expect(replay.headers.get("Idempotent-Replayed")).toBe("true");
    expect(replay.body.job.id).toBe(done.body.job.id);
    // A stored replay never holds a signed URL, and says why.
    expect(replay.body.container?.download).toEqual({
      url: null,
      expiresAt: null,
      unavailableReason: "idempotent_replay",
    });
    expect(replay.body.container?.location).toEqual(done.body.container?.location);
    const jobs = await stack.db
      .selectFrom("content_jobs")
      .select("id")
      .where("org_id", "=", o.tenant.orgId)
      .execute();
    expect(jobs).toHaveLength(1);
  });
});

describe("storage { id } (the partner's bucket)", () => {
  test("async: the object lands in the partner's bucket with the right bytes, nothing in ours", async () => {
    const o = await contentOrg(stack, as);
    const configId = await storageConfig(o);
    const started = await as(o.tenant.secret).post<unknown, ContentJob>(jobsPath(o), {
      kind: "reel_storyboard",
      brief: "Three scenes: lace up, climb, summit",
      frames: 3,
      storage: { id: configId },
    });
    expect(started.status, started.text).toBe(202);
    expect(started.body.storage).toEqual({ mode: "own", storageConfigId: configId });
    const row = await jobEnded(stack.db, started.body.id);
    expect(row.status, row.error_code ?? "").toBe("succeeded");
    const got = await as(o.tenant.secret).get<ContentJobResult>(`${jobsPath(o)}/${started.body.id}`);
    const container = got.body.container;
    expect(container).toMatchObject({
      storageMode: "own",
      storageConfigId: configId,
      location: { bucket: PARTNER_BUCKET, key: `brand/generated/${o.projectId}/${container?.id}.json` },
      download: { unavailableReason: null },
    });
    const bytes = await partnerBucket().get(container?.location.key ?? "");
    // Signed with the partner's storage config, as the container route does.
    const fromUrl = await fetch(container?.download.url ?? "http://missing/");
    expect(fromUrl.status).toBe(200);
    expect(sha256(new Uint8Array(await fromUrl.arrayBuffer()))).toBe(container?.sha256);
    expect(bytes && sha256(bytes)).toBe(container?.sha256);
    const storyboard = JSON.parse(new TextDecoder().decode(bytes));
    expect(storyboard.frames).toHaveLength(3);
    expect(await orgKeys(stack.s3.media, `media/${o.tenant.orgId}/`)).toEqual([]);
    expect(await orgKeys(stack.s3.media, `staging/${o.tenant.orgId}/`)).toEqual([]);
  });

  test("sync is refused (400 storage_mode_not_allowed), and another org's config is 404; nothing stored", async () => {
    const o = await contentOrg(stack, as);
    const other = await contentOrg(stack, as);
    const configId = await storageConfig(o);
    const sync = await as(o.tenant.secret).post(jobsPath(o), {
      kind: "copy",
      brief: "x",
      storage: { id: configId },
      async: false,
    });
    expect(sync.status).toBe(400);
    expect(sync.error.code).toBe("storage_mode_not_allowed");
    expect(sync.error.message).toMatch(/async/);
    const foreign = await as(other.tenant.secret).post(jobsPath(other), {
      kind: "copy",
      brief: "x",
      storage: { id: configId },
    });
    expect(foreign.status).toBe(404);
    const missing = await as(o.tenant.secret).post(jobsPath(o), {
      kind: "copy",
      brief: "x",
      storage: { id: "stcfg_nope" },
    });
    expect(missing.status).toBe(404);
    const jobs = await stack.db
      .selectFrom("content_jobs")
      .select("id")
      .where("org_id", "in", [o.tenant.orgId, other.tenant.orgId])
      .execute();
    expect(jobs).toEqual([]);
  });
});

describe("storage false (nothing kept)", () => {
  test("sync: the bytes are the answer; the job keeps metadata only, no container, no object", async () => {
    const o = await contentOrg(stack, as);
    await anyEventEndpoint(as(o.tenant.secret));
    const key = randomUUID();
    const body = JSON.stringify({
      kind: "copy",
      brief: "Ephemeral launch copy",
      storage: false,
      async: false,
    });
    const answer = await stack.api(jobsPath(o), {
      method: "POST",
      headers: bearer(o.tenant.secret, { "Idempotency-Key": key }),
      body,
    });
    expect(answer.status).toBe(200);
    expect(answer.headers.get("content-type")).toMatch(/^text\/plain/);
    const bytes = new Uint8Array(await answer.arrayBuffer());
    expect(new TextDecoder().decode(bytes)).toContain("Ephemeral launch copy");
    expect(answer.headers.get("x-layers-sha256")).toBe(sha256(bytes));
    const jobId = answer.headers.get("x-layers-job-id") ?? "";
    const row = await stack.db
      .selectFrom("content_jobs")
      .selectAll()
      .where("id", "=", jobId)
      .executeTakeFirstOrThrow();
    expect(row).toMatchObject({
      status: "succeeded",
      storage_mode: "none",
      async: false,
      request_ciphertext: null,
    });
    expect(row.metadata).toMatchObject({ sha256: sha256(bytes), sizeBytes: bytes.length });
    expect(
      await stack.db.selectFrom("content_containers").select("id").where("job_id", "=", jobId).execute(),
    ).toEqual([]);
    expect(await orgKeys(stack.s3.media, `staging/${o.tenant.orgId}/`)).toEqual([]);
    expect(await orgKeys(stack.s3.media, `media/${o.tenant.orgId}/`)).toEqual([]);
    const events = await stack.db
      .selectFrom("webhook_messages")
      .select("payload")
      .where("org_id", "=", o.tenant.orgId)
      .execute();
    expect(events.map((e) => e.payload)).toEqual([
      expect.objectContaining({ storageMode: "none", containerId: null }),
    ]);
    // A replay cannot give the bytes again (nothing was kept): it answers the job as JSON.
    const replay = await as(o.tenant.secret).post<unknown, ContentJobResult>(jobsPath(o), JSON.parse(body), {
      idempotencyKey: key,
    });
    expect(replay.status).toBe(200);
    expect(replay.headers.get("Idempotent-Replayed")).toBe("true");
    expect(replay.body).toMatchObject({ job: { id: jobId, status: "succeeded" }, container: null });
  });

  test("async is refused (400 storage_mode_not_allowed naming the rule); nothing stored", async () => {
    const o = await contentOrg(stack, as);
    for (const body of [
      { kind: "copy", brief: "x", storage: false },
      { kind: "copy", brief: "x", storage: false, async: true },
    ]) {
      const refused = await as(o.tenant.secret).post(jobsPath(o), body);
      expect(refused.status).toBe(400);
      expect(refused.error.code).toBe("storage_mode_not_allowed");
      expect(refused.error.message).toMatch(/async: false/);
    }
    expect(
      await stack.db.selectFrom("content_jobs").select("id").where("org_id", "=", o.tenant.orgId).execute(),
    ).toEqual([]);
  });
});

describe("rules before a job exists", () => {
  test("content layer off: 409 layer_disabled; archived project: 403; other project's reference: 404", async () => {
    const off = await contentOrg(stack, as, false);
    const refused = await as(off.tenant.secret).post(jobsPath(off), { kind: "copy", brief: "x" });
    expect(refused.status).toBe(409);
    expect(refused.error.code).toBe("layer_disabled");

    const o = await contentOrg(stack, as);
    const first = await as(o.tenant.secret).post<unknown, ContentJobResult>(jobsPath(o), {
      kind: "copy",
      brief: "Earlier copy",
      async: false,
    });
    expect(first.status, first.text).toBe(200);
    const containerId = first.body.container?.id ?? "";
    // The same container referenced from the project it belongs to works, and its copy reaches the prompt.
    const second = await as(o.tenant.secret).post<unknown, ContentJobResult>(jobsPath(o), {
      kind: "copy",
      brief: "Follow-up copy",
      references: [containerId],
      async: false,
    });
    expect(second.status, second.text).toBe(200);
    const project2 = await as(o.tenant.secret).post<unknown, { id: string }>("/v1/projects", {
      name: "Other",
    });
    await enableContentLayer(as(o.tenant.secret), project2.body.id);
    const cross = await as(o.tenant.secret).post(`/v1/projects/${project2.body.id}/content-jobs`, {
      kind: "copy",
      brief: "x",
      references: [containerId],
    });
    expect(cross.status).toBe(404);
    expect(cross.error.message).toContain(containerId);
    await stack.db
      .updateTable("projects")
      .set({ archived_at: new Date() })
      .where("id", "=", project2.body.id)
      .execute();
    const archived = await as(o.tenant.secret).post(`/v1/projects/${project2.body.id}/content-jobs`, {
      kind: "copy",
      brief: "x",
    });
    expect(archived.status).toBe(403);
    expect(archived.error.code).toBe("project_archived");
  });
});
