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
