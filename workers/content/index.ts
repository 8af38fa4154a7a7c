import { WorkflowEntrypoint, type WorkflowEvent, type WorkflowStep } from "cloudflare:workers";
import { NonRetryableError } from "cloudflare:workflows";
import { z } from "zod";
import { codeOf, JobError, tagged } from "../../functions/content/jobs/errors";
import { putToPartnerBucket } from "../../functions/content/jobs/partnerBucket";
import { jobRequestSchema } from "../../functions/content/jobs/request";
import {
  failJob,
  generateInMemory,
  generateMedia,
  type JobRef,
  type RunDeps,
  recordJob,
  storeMedia,
  type ValidatedJob,
  validateJob,
} from "../../functions/content/jobs/run";
import { parseKeyring } from "../../functions/destinations/crypto";
import { objectStoreFor } from "../../functions/storage/config";
import { closeDb, createDb } from "../../shared/db";
import { createLogger } from "../../shared/logger";
import { parseEnv } from "../common/parseEnv";
import { type ContentVars, contentVarsSchema } from "./env";

const log = createLogger({ worker: "content" });

const id = z.string().min(1).max(64);
/** Workflow params and the inline call's job reference: ids only. */
const jobRefSchema = z.object({ jobId: id, orgId: id, projectId: id }).strict();

/**
 * The dependencies of one job run (every step of a Workflow run, or one inline call): one database handle,
 * opened on its first query and closed by `close` at the end of the run, the media bucket, the agent, the
 * keyring. A run the engine replays (after an eviction) builds its own.
 */
function runDeps(env: ContentBindings, vars: ContentVars): { deps: RunDeps; close(): Promise<void> } {
  const media = objectStoreFor(vars, vars.MEDIA_BUCKET);
  if (!media)
    throw new JobError("storage_unavailable", "The media bucket is not configured (S3_ENDPOINT).", false);
  const db = createDb({
    databaseUrl: vars.DATABASE_URL,
    wsProxy: vars.NEON_WS_PROXY,
    role: "layers_content",
    stepTimeoutMs: vars.DATABASE_TIMEOUT_MS,
  });
  return {
    deps: {
      db,
      media,
      mediaBucket: vars.MEDIA_BUCKET,
      agent: env.AGENT,
      keyring: parseKeyring(env),
      putToPartner: putToPartnerBucket,
      allowLocalHttp: vars.STORAGE_ALLOW_LOCAL_HTTP === "true",
      partnerTimeoutMs: vars.CONTENT_PARTNER_TIMEOUT_MS,
      now: () => new Date(),
    },
    close: () => closeDb(db),
  };
}

/** Retries of the fail step (see ContentJobWorkflow.run). */
const FAIL_STEP_RETRIES = 10;

/** Tests only (CONTENT_TEST_CRASH_AFTER): the steps that already "crashed" once, per job, in this isolate. */
const crashed = new Set<string>();

/**
 * A step's failure as the Workflow engine should see it: a final JobError stops the retries
 * (NonRetryableError), any other is retried. The message carries the code and never request text.
 */
function stepError(error: unknown): Error {
  if (error instanceof JobError) {
    return error.retryable ? new Error(tagged(error)) : new NonRetryableError(tagged(error));
  }
  // Database or runtime failures: retried; logged with redaction, reported by name only.
  log.error("content step failed", { error });
  return new Error(`[code=internal_error] ${error instanceof Error ? error.name : "error"}`);
}

/**
 * One content job (params: { jobId, orgId, projectId }). Steps: validate (and build the prompt) → generate
 * → store (own bucket only; storage true is generated in place) → record → notify, each with its own retries (CONTENT_STEP_RETRIES from CONTENT_RETRY_DELAY_MS,
 * exponential). No step returns request text, prompt text or media bytes (functions/content/jobs/run.ts).
 * A job that gives up is failed with its code by a last step, which also emits content_job.failed.
 */
export class ContentJobWorkflow extends WorkflowEntrypoint<ContentBindings, JobRef> {
  override async run(event: Readonly<WorkflowEvent<JobRef>>, step: WorkflowStep) {
    const ref = jobRefSchema.parse(event.payload);
    const vars = parseEnv(contentVarsSchema, this.env);
    const config = {
      retries: {
        limit: vars.CONTENT_STEP_RETRIES,
        delay: vars.CONTENT_RETRY_DELAY_MS,
        backoff: "exponential",
      },
      timeout: "5 minutes",
    } as const;
    // The fail step needs only the database: it outlasts an outage the others gave up in (10 retries from
    // the same delay, exponential: about 2.8 h with the 10 s default). A job it still cannot close is
    // failed by the content-retention Cron job after CONTENT_JOB_ABANDON_HOURS.
    const failConfig = { ...config, retries: { ...config.retries, limit: FAIL_STEP_RETRIES } } as const;
    let opened: ReturnType<typeof runDeps> | undefined;
    const deps = () => {
      opened ??= runDeps(this.env, vars);
      return opened.deps;
    };
    const run = <T>(name: string, work: (deps: RunDeps) => Promise<T>): Promise<T> =>
      step.do(name, config, async () => {
        try {
          const out = await work(deps());
          const crashKey = `${name}:${ref.jobId}`;
          if (vars.CONTENT_TEST_CRASH_AFTER === name && !crashed.has(crashKey)) {
            crashed.add(crashKey);
            throw new Error(`[code=internal_error] test crash after ${name}`);
          }
          return out as never;
        } catch (error) {
          throw stepError(error);
        }
      });
    let job: ValidatedJob | null = null;
    try {
      const validated = await run("validate", (d) => validateJob(d, ref));
      job = validated;
      if (validated.state === "finished") return { status: "finished" as const };
      const generated = await run("generate", (d) => generateMedia(d, ref, validated));
      // storage true: generate wrote the final object, so no store step (storeMedia only names it).
      const stored = generated.inPlace
        ? await storeMedia(deps(), ref, validated, generated)
        : await run("store", (d) => storeMedia(d, ref, validated, generated));
      const { containerId } = await run("record", (d) => recordJob(d, ref, validated, generated, stored));
      // content_job.succeeded is in the outbox since record committed; the webhooks sweep sends it (≤ 1 min).
      await step.do("notify", config, async () => {
        log.info("content job succeeded", { jobId: ref.jobId, orgId: ref.orgId, containerId });
        return { containerId };
      });
      return { status: "succeeded" as const, containerId };
    } catch (error) {
      const errorCode = codeOf(error);
      const known = job ? { kind: job.kind, storageMode: job.storageMode } : null;
      await step.do("fail", failConfig, async () => {
        try {
          await failJob(deps(), ref, known, errorCode);
        } catch (failure) {
          throw stepError(failure);
        }
        log.warn("content job failed", { jobId: ref.jobId, orgId: ref.orgId, errorCode });
        return { errorCode };
      });
      return { status: "failed" as const, errorCode };
    } finally {
      // Not awaited: closing waits for connections a dead socket may never give back.
      if (opened) this.ctx.waitUntil(opened.close());
    }
  }
}

const inlineSchema = z.object({ ref: jobRefSchema, request: jobRequestSchema }).strict();

const STATUS_OF_CODE: Record<string, number> = {
  invalid_prompt_input: 400,
  reference_other_project: 400,
  provider_timeout: 504,
  provider_unavailable: 503,
  storage_unavailable: 503,
};

/**
 * POST /generate-inline { ref, request }: a `storage: false` job, generated in memory (the API calls this
 * over its CONTENT service binding, so the API itself has no way to the agent). 200 with the media bytes
 * (Content-Type, x-layers-sha256, x-layers-provider, x-layers-model); the job row gets its metadata and
 * content_job.succeeded, or failed with its code and { error: { code, message } } here. Nothing is stored.
 */
export default {
  async fetch(request: Request, env: ContentBindings, ctx: ExecutionContext): Promise<Response> {
    const url = new URL(request.url);
    if (url.pathname !== "/generate-inline" || request.method !== "POST") {
      return Response.json({ error: { code: "not_found" } }, { status: 404 });
    }
    const parsed = inlineSchema.safeParse(await request.json().catch(() => undefined));
    if (!parsed.success) {
      return Response.json(
        { error: { code: "invalid_request", message: "Bad inline request." } },
        { status: 400 },
      );
    }
    const vars = parseEnv(contentVarsSchema, env);
    let opened: ReturnType<typeof runDeps> | undefined;
    try {
      opened = runDeps(env, vars);
      const out = await generateInMemory(opened.deps, parsed.data.ref, parsed.data.request);
      return new Response(out.media, {
        headers: {
          "content-type": out.facts.mediaType,
          "x-layers-sha256": out.facts.sha256,
          "x-layers-provider": out.facts.provider,
          "x-layers-model": out.facts.model,
        },
      });
    } catch (error) {
      const code = codeOf(error);
      log.warn("inline content job failed", {
        jobId: parsed.data.ref.jobId,
        orgId: parsed.data.ref.orgId,
        code,
      });
      return Response.json(
        { error: { code, message: error instanceof JobError ? error.message : "Generation failed." } },
        { status: Object.hasOwn(STATUS_OF_CODE, code) ? (STATUS_OF_CODE[code] as number) : 502 },
      );
    } finally {
      // Not awaited: closing waits for connections a dead socket may never give back.
      if (opened) ctx.waitUntil(opened.close());
    }
  },
} satisfies ExportedHandler<ContentBindings>;
