import { afterAll, beforeAll, expect, test } from "vitest";
import { createS3Store } from "../../../functions/storage/objectStore";
import { type Api, api } from "../../support/api";
import { type ApiTenant, addApiKey, createApiTenant } from "../../support/apiTenant";
import type { Project } from "../../support/apiTypes";
import { insertTestContainer, type TestContainer } from "../../support/contentContainers";
import { rememberSecret } from "../../support/issuedSecrets";
import { type LocalS3, startLocalS3 } from "../../support/s3";
import { type Stack, startStack } from "../../support/stack";
import { lastJobLog } from "./fixtures";

// Retention of generated content through the real Cron Worker (maintenance role), the clock injected: the
// projects are archived through the API with a request clock in the past (X-Layers-Test-Now), the Cron runs
// at the real now. Cloud containers lose object then row; own-bucket containers lose the row only; a
// storage outage leaves the row for the next run; job records go after 400 days; every run is bounded.

const DAY = 86_400_000;
const PARTNER_BUCKET = "partner-retention";

let stack: Stack;
let partner: LocalS3;
beforeAll(async () => {
  partner = await startLocalS3({ extraBuckets: [PARTNER_BUCKET] });
  // Two rows per class per run: the budget test below sees a run cut short and the next one finish.
  stack = await startStack({
    consumer: "recorder",
    cronVars: { RETENTION_ROW_BUDGET: "2", RETENTION_CHUNK_SIZE: "1" },
  });
});
afterAll(async () => {
  await stack?.dispose();
  await partner?.dispose();
});

const partnerStore = () =>
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
}
async function org(): Promise<Org> {
  const owner = await createApiTenant(stack.db);
  return { owner, as: api(stack, owner.secret) };
}

async function projectArchivedAt(o: Org, archivedAt: Date | null): Promise<string> {
  const p = await o.as.post<unknown, Project>("/v1/projects", { name: "Retention app" });
  expect(p.status, p.text).toBe(201);
  if (archivedAt) {
    // A key of its own: the request clock in the past would otherwise meet the key's rate-limit state.
    const key = await addApiKey(stack.db, o.owner.orgId, "owner");
    const a = await api(stack, key.secret).post(`/v1/projects/${p.body.id}/archive`, undefined, {
      now: archivedAt,
    });
    expect(a.status, a.text).toBe(200);
  }
  return p.body.id;
}

const rowExists = async (id: string) =>
  (await stack.db.selectFrom("content_containers").select("id").where("id", "=", id).executeTakeFirst()) !==
  undefined;

/** Runs the Cron until none of `ids` is left (at most `runs` times); returns how many runs it took. */
async function cronUntilGone(now: Date, ids: string[], runs = 10): Promise<number> {
  for (let run = 1; run <= runs; run += 1) {
    await stack.cron(now);
    const left = await Promise.all(ids.map(rowExists));
    if (!left.some(Boolean)) return run;
  }
  throw new Error(`containers still there after ${runs} runs`);
}

test("archived + 90 days: cloud objects then rows go, own-bucket rows go (objects stay), the rest stays", async () => {
  const now = new Date();
  const o = await org();
  const expired = await projectArchivedAt(o, new Date(now.getTime() - 91 * DAY));
  const grace = await projectArchivedAt(o, new Date(now.getTime() - 89 * DAY));
  const live = await projectArchivedAt(o, null);
  const ownStore = partnerStore();
  const secret = `retentionSecret/${crypto.randomUUID()}`;
  rememberSecret(secret);
  const config = await o.as.post<unknown, { id: string }>("/v1/storage-configs", {
    endpoint: partner.endpoint,
    region: "us-east-1",
    bucket: PARTNER_BUCKET,
    forcePathStyle: true,
    accessKeyId: "S3RVER",
    secretAccessKey: secret,
  });
  expect(config.status, config.text).toBe(201);

  const cloud = (projectId: string) =>
    insertTestContainer(stack.db, stack.s3.media, { orgId: o.owner.orgId, projectId });
  const gone1 = await cloud(expired);
  const gone2 = await cloud(expired);
  const ownGone = await insertTestContainer(stack.db, ownStore, {
    orgId: o.owner.orgId,
    projectId: expired,
    storageConfigId: config.body.id,
    bucket: PARTNER_BUCKET,
  });
  const kept = [await cloud(grace), await cloud(live)];

  const runs = await cronUntilGone(now, [gone1.id, gone2.id, ownGone.id]);
  // Budget 2 per run: three expired rows cannot all go in one.
  expect(runs).toBeGreaterThan(1);
  for (const c of [gone1, gone2]) expect(await stack.s3.media.get(c.objectKey)).toBeUndefined();
  expect(await ownStore.get(ownGone.objectKey)).toEqual(ownGone.bytes);
  for (const c of kept) {
    expect(await rowExists(c.id)).toBe(true);
    expect(await stack.s3.media.get(c.objectKey)).toEqual(c.bytes);
  }
  const log = lastJobLog(stack, "content-retention");
  expect(log.msg).toBe("cron job done");
  expect(log.counts).toHaveProperty("content_containers");
});

test("object storage down: the cloud row stays for the next run, own-bucket rows still go", async () => {
  const now = new Date();
  const o = await org();
  const expired = await projectArchivedAt(o, new Date(now.getTime() - 100 * DAY));
  const cloudOne: TestContainer = await insertTestContainer(stack.db, stack.s3.media, {
    orgId: o.owner.orgId,
    projectId: expired,
  });
  const secret = `retentionSecret/${crypto.randomUUID()}`;
  rememberSecret(secret);
  const config = await o.as.post<unknown, { id: string }>("/v1/storage-configs", {
    endpoint: partner.endpoint,
    region: "us-east-1",
    bucket: PARTNER_BUCKET,
    forcePathStyle: true,
    accessKeyId: "S3RVER",
    secretAccessKey: secret,
  });
  expect(config.status, config.text).toBe(201);
  const ownOne = await insertTestContainer(stack.db, partnerStore(), {
    orgId: o.owner.orgId,
    projectId: expired,
    storageConfigId: config.body.id,
    bucket: PARTNER_BUCKET,
  });
  await stack.s3.stop();
  try {
    await stack.cron(now);
    await stack.cron(now);
    expect(await rowExists(cloudOne.id)).toBe(true);
    expect(await rowExists(ownOne.id)).toBe(false);
    const log = lastJobLog(stack, "content-retention");
    expect(log.counts?.content_object_failures).toBeGreaterThanOrEqual(1);
  } finally {
    await stack.s3.start();
  }
  await cronUntilGone(now, [cloudOne.id]);
  expect(await stack.s3.media.get(cloudOne.objectKey)).toBeUndefined();
});

test("content job records go 400 days after creation; a container keeps going without its job", async () => {
  const now = new Date();
  const o = await org();
  const projectId = await projectArchivedAt(o, null);
  const old = await insertTestContainer(stack.db, stack.s3.media, {
    orgId: o.owner.orgId,
    projectId,
    createdAt: new Date(now.getTime() - 400 * DAY - 60_000),
  });
  const recent = await insertTestContainer(stack.db, stack.s3.media, {
    orgId: o.owner.orgId,
    projectId,
    createdAt: new Date(now.getTime() - 399 * DAY),
  });
  const job = (id: string) =>
    stack.db.selectFrom("content_jobs").select("id").where("id", "=", id).executeTakeFirst();
  for (let run = 0; run < 10 && (await job(old.jobId)); run += 1) await stack.cron(now);
  expect(await job(old.jobId)).toBeUndefined();
  expect(await job(recent.jobId)).toBeDefined();
  const container = await stack.db
    .selectFrom("content_containers")
    .select(["id", "job_id"])
    .where("id", "=", old.id)
    .executeTakeFirstOrThrow();
  expect(container.job_id).toBeNull();
});

test("a job left open past 24 h is failed as abandoned (request cleared, content_job.failed), and finished jobs' staging copies go", async () => {
  const o = await org();
  const projectId = await projectArchivedAt(o, null);
  const now = new Date();
  const insertJob = async (id: string, status: string, createdAt: Date) =>
    stack.db
      .insertInto("content_jobs")
      .values({
        id,
        org_id: o.owner.orgId,
        project_id: projectId,
        kind: "copy",
        status,
        storage_mode: "cloud",
        async: true,
        created_at: createdAt,
        ...(status === "succeeded" ? { finished_at: createdAt } : {}),
        ...(status === "queued" || status === "running"
          ? { request_ciphertext: "sealed-request-of-a-stuck-job", request_key_id: "test-k1" }
          : {}),
      } as never)
      .execute();
  // An endpoint that wants every event, so content_job.failed is put in the outbox.
  await stack.db
    .insertInto("webhook_endpoints")
    .values({
      id: `whe_abandon${Date.now()}`,
      org_id: o.owner.orgId,
      project_id: null,
      url: "https://hooks.example.com/content",
      secret_ciphertext: "c",
      secret_key_id: "k1",
    } as never)
    .execute();
  const stuck = `cjob_stuck${Date.now()}`;
  const young = `cjob_young${Date.now()}`;
  const done = `cjob_done${Date.now()}`;
  await insertJob(stuck, "running", new Date(now.getTime() - 25 * 3_600_000));
  await insertJob(young, "running", new Date(now.getTime() - 23 * 3_600_000));
  await insertJob(done, "succeeded", new Date(now.getTime() - 3_600_000));
  const staging = (job: string) => `staging/${o.owner.orgId}/${projectId}/${job}`;
  const bytes = new TextEncoder().encode("generated");
  for (const job of [stuck, young, done, `cjob_gone${Date.now()}`]) {
    await stack.s3.media.put(staging(job), bytes, "text/plain");
  }

  await stack.cron(now);
  const jobs = await stack.db
    .selectFrom("content_jobs")
    .select(["id", "status", "error_code", "request_ciphertext"])
    .where("id", "in", [stuck, young])
    .orderBy("id")
    .execute();
  expect(jobs).toEqual([
    { id: stuck, status: "failed", error_code: "abandoned", request_ciphertext: null },
    { id: young, status: "running", error_code: null, request_ciphertext: "sealed-request-of-a-stuck-job" },
  ]);
  const failed = await stack.db
    .selectFrom("webhook_messages")
    .select(["event_type", "payload"])
    .where("org_id", "=", o.owner.orgId)
    .where("event_type", "=", "content_job.failed")
    .execute();
  expect(failed).toHaveLength(1);
  expect(failed[0]?.payload).toMatchObject({ contentJobId: stuck, errorCode: "abandoned" });
  // Only the open (young) job keeps its staging copy.
  expect((await stack.s3.media.list(`staging/${o.owner.orgId}/`)).keys).toEqual([staging(young)]);
  // The abandoned job's own copy goes with failing it; the sweep deletes the finished and the unknown job's.
  expect(lastJobLog(stack, "content-retention").counts).toMatchObject({
    content_jobs_abandoned: 1,
    content_staging_deleted: 2,
  });
});
