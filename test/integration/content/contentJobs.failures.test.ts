import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { type Api, api } from "../../support/api";
import {
  anyEventEndpoint,
  type ContentJob,
  type ContentJobResult,
  type ContentOrg,
  contentOrg,
  jobEnded,
} from "../../support/content";
import { type FakeProviders, startFakeProviders } from "../../support/fakeProviders";
import { rememberSecret } from "../../support/issuedSecrets";
import { type LocalS3, startLocalS3 } from "../../support/s3";
import { findInTables } from "../../support/scan";
import { type Stack, startStack, waitFor } from "../../support/stack";

// Content jobs when things go wrong, through the real Workers: the agent calls a fake OpenAI that fails,
// hangs or refuses; a partner's bucket is down; every record step "crashes" once after committing
// (CONTENT_TEST_CRASH_AFTER=record), so each success also proves that a step run again after a crash
// writes no second container and no second event. Then the privacy scan: no brief, product text, storage
// secret or signed URL token in any table or captured log line.

const PARTNER_BUCKET = "partner-media";
let stack: Stack;
let fakes: FakeProviders;
let partner: LocalS3;
/** Every brief and product text this file sent: none may be stored or logged. */
const sent: string[] = [];

beforeAll(async () => {
  fakes = await startFakeProviders();
  partner = await startLocalS3({ extraBuckets: [PARTNER_BUCKET] });
  stack = await startStack({
    consumer: "recorder",
    // A sync job is answered 202 at once: the bound, not the job, decides.
    apiVars: { WEBHOOK_ALLOW_LOCAL_HTTP: "true", CONTENT_SYNC_WAIT_MS: "0" },
    agentVars: {
      CONTENT_PROVIDER: "openai",
      OPENAI_API_KEY: fakes.openai.key,
      OPENAI_BASE_URL: fakes.urls.openai,
      PROVIDER_TIMEOUT_MS: "300",
    },
    contentVars: { CONTENT_STEP_RETRIES: "2", CONTENT_TEST_CRASH_AFTER: "record" },
  });
});
afterAll(async () => {
  await stack?.dispose();
  await partner?.dispose();
  await fakes?.close();
});

const as = (secret: string): Api => api(stack, secret);
const jobsPath = (o: ContentOrg) => `/v1/projects/${o.projectId}/content-jobs`;

function brief(): string {
  const text = `Secret launch plan ${randomUUID()}`;
  sent.push(text);
  return text;
}

async function start(o: ContentOrg, body: Record<string, unknown>): Promise<ContentJob> {
  const started = await as(o.tenant.secret).post<unknown, ContentJob>(jobsPath(o), body);
  expect(started.status, started.text).toBe(202);
  return started.body;
}

async function events(orgId: string) {
  return stack.db
    .selectFrom("webhook_messages")
    .select(["event_type", "payload"])
    .where("org_id", "=", orgId)
    .execute();
}

const generationCalls = () => fakes.openai.calls.filter((c) => c.path.endsWith("/responses")).length;

/** The orgs this file makes: the last test checks that their jobs (and only theirs) all ended. */
const orgIds: string[] = [];
async function ownOrg() {
  const o = await contentOrg(stack, as);
  orgIds.push(o.tenant.orgId);
  return o;
}

describe("provider failures", () => {
  test("a provider down twice, then up: retried, one container and one event despite a crash after record", async () => {
    const o = await ownOrg();
    await anyEventEndpoint(as(o.tenant.secret));
    fakes.openai.reset();
    fakes.openai.failNext(2, { kind: "status", status: 503 });
    const job = await start(o, {
      kind: "copy",
      brief: brief(),
      product: { name: `Product ${randomUUID()}` },
    });
    const row = await jobEnded(stack.db, job.id);
    expect(row.status, row.error_code ?? "").toBe("succeeded");
    expect(generationCalls()).toBe(3);
    const containers = await stack.db
      .selectFrom("content_containers")
      .select("id")
      .where("job_id", "=", job.id)
      .execute();
    expect(containers).toHaveLength(1);
    // The record step did crash after its commit, and ran again.
    // (The notify step's line comes after record's second run; the crash's line before it.)
    await waitFor(async () =>
      stack.logs.some((l) => l.includes("content job succeeded") && l.includes(job.id)) ? true : undefined,
    );
    expect(stack.logs.join("\n")).toContain("test crash after record");
    expect((await events(o.tenant.orgId)).map((e) => e.event_type)).toEqual(["content_job.succeeded"]);
    expect(await stack.s3.media.list(`staging/${o.tenant.orgId}/`)).toMatchObject({ keys: [] });
  });

  test("a provider that never answers: each try times out, then failed provider_timeout with its event", async () => {
    const o = await ownOrg();
    await anyEventEndpoint(as(o.tenant.secret));
    fakes.openai.reset();
    fakes.openai.failNext(3, { kind: "hang" });
    const job = await start(o, { kind: "copy", brief: brief() });
    const row = await jobEnded(stack.db, job.id);
    expect(row).toMatchObject({ status: "failed", error_code: "provider_timeout", request_ciphertext: null });
    expect(generationCalls()).toBe(3);
    expect(await events(o.tenant.orgId)).toEqual([
      {
        event_type: "content_job.failed",
        payload: {
          contentJobId: job.id,
          projectId: o.projectId,
          kind: "copy",
          status: "failed",
          storageMode: "cloud",
          errorCode: "provider_timeout",
          link: `/v1/projects/${o.projectId}/content-jobs/${job.id}`,
        },
      },
    ]);
    expect(
      await stack.db.selectFrom("content_containers").select("id").where("job_id", "=", job.id).execute(),
    ).toEqual([]);
    const got = await as(o.tenant.secret).get<ContentJobResult>(`${jobsPath(o)}/${job.id}`);
    expect(got.body).toMatchObject({
      job: { status: "failed", errorCode: "provider_timeout" },
      container: null,
    });
  });

  test("a refusal no retry can fix (400): failed provider_rejected after one call", async () => {
    const o = await ownOrg();
    fakes.openai.reset();
    fakes.openai.failNext(1, { kind: "status", status: 400 });
    const job = await start(o, { kind: "copy", brief: brief() });
    const row = await jobEnded(stack.db, job.id);
    expect(row).toMatchObject({ status: "failed", error_code: "provider_rejected" });
    expect(generationCalls()).toBe(1);
  });

  test("storage false with the provider down: 422 content_generation_failed naming the code; job failed", async () => {
    const o = await ownOrg();
    fakes.openai.reset();
    fakes.openai.failNext(1, { kind: "status", status: 503 });
    const answer = await as(o.tenant.secret).post(jobsPath(o), {
      kind: "copy",
      brief: brief(),
      storage: false,
      async: false,
    });
    expect(answer.status).toBe(422);
    expect(answer.error.code).toBe("content_generation_failed");
    const details = answer.error.details as { jobId: string; errorCode: string }[];
    expect(details[0]?.errorCode).toBe("provider_unavailable");
    const row = await stack.db
      .selectFrom("content_jobs")
      .selectAll()
      .where("id", "=", details[0]?.jobId ?? "")
      .executeTakeFirstOrThrow();
    expect(row).toMatchObject({ status: "failed", error_code: "provider_unavailable", storage_mode: "none" });
  });

  test("sync past the bound: 202 with the job, which still finishes", async () => {
    const o = await ownOrg();
    fakes.openai.reset();
    const answer = await as(o.tenant.secret).post<unknown, ContentJob>(jobsPath(o), {
      kind: "copy",
      brief: brief(),
      async: false,
    });
    expect(answer.status, answer.text).toBe(202);
    expect(answer.body).toMatchObject({ async: false, storage: { mode: "cloud" } });
    expect((await jobEnded(stack.db, answer.body.id)).status).toBe("succeeded");
  });
});

describe("storage failures", () => {
  test("the partner's bucket down: retried, then failed storage_unavailable; staging gone, nothing in ours", async () => {
    const o = await ownOrg();
    await anyEventEndpoint(as(o.tenant.secret));
    const secret = `partner/${randomUUID().replaceAll("-", "")}Kq7`;
    rememberSecret(secret);
    sent.push(secret);
    const config = await as(o.tenant.secret).post<unknown, { id: string }>("/v1/storage-configs", {
      endpoint: partner.endpoint,
      region: "us-east-1",
      bucket: PARTNER_BUCKET,
      forcePathStyle: true,
      accessKeyId: "S3RVER",
      secretAccessKey: secret,
    });
    expect(config.status, config.text).toBe(201);
    fakes.openai.reset();
    await partner.stop();
    try {
      const job = await start(o, { kind: "copy", brief: brief(), storage: { id: config.body.id } });
      const row = await jobEnded(stack.db, job.id);
      expect(row).toMatchObject({
        status: "failed",
        error_code: "storage_unavailable",
        request_ciphertext: null,
      });
      expect((await events(o.tenant.orgId)).map((e) => e.event_type)).toEqual(["content_job.failed"]);
    } finally {
      await partner.start();
    }
    expect(await stack.s3.media.list(`staging/${o.tenant.orgId}/`)).toMatchObject({ keys: [] });
    expect(await stack.s3.media.list(`media/${o.tenant.orgId}/`)).toMatchObject({ keys: [] });
  });
});

test("privacy: no brief, product text, storage secret or signed URL token in any table or log line", async () => {
  // A sync job that succeeds hands out a signed URL: its signature must not be stored either.
  const o = await ownOrg();
  fakes.openai.reset();
  const job = await start(o, { kind: "copy", brief: brief() });
  await jobEnded(stack.db, job.id);
  const got = await as(o.tenant.secret).get<ContentJobResult>(`${jobsPath(o)}/${job.id}`);
  const url = new URL(got.body.container?.download.url ?? "http://missing/");
  const signature = url.searchParams.get("X-Amz-Signature") ?? "";
  expect(signature).toMatch(/^[0-9a-f]{64}$/);
  expect(sent.length).toBeGreaterThan(5);
  expect(await findInTables(stack.db, [...sent, signature])).toEqual([]);
  const logs = stack.logs.join("\n");
  for (const needle of [...sent, signature]) expect(logs).not.toContain(needle);
  // Every job this file started is finished, and none still holds its sealed request (this file's orgs
  // only: other files in the same database leave queued rows of their own, e.g. schema.test.ts).
  expect(orgIds.length).toBeGreaterThan(0);
  const open = await stack.db
    .selectFrom("content_jobs")
    .select("id")
    .where("org_id", "in", orgIds)
    .where((eb) =>
      eb.or([eb("request_ciphertext", "is not", null), eb("status", "in", ["queued", "running"])]),
    )
    .execute();
  expect(open).toEqual([]);
});
