import { type OpenAPIHono, z } from "@hono/zod-openapi";
import type { Context } from "hono";
import { getContainerOfJob } from "../../../functions/content/containers";
import {
  containerDownload,
  containerWithDownload,
  REPLAY_DOWNLOAD,
} from "../../../functions/content/containerVerbs";
import { briefSchema, MAX_REFERENCES, productSchema } from "../../../functions/content/jobs/request";
import { getJob, type JobView } from "../../../functions/content/jobs/store";
import {
  contentJobJson,
  createContentJob,
  failUnstartedJob,
  getProjectJob,
  listProjectJobs,
} from "../../../functions/content/jobs/verbs";
import { CONTENT_KINDS, STORYBOARD_FRAMES } from "../../../functions/content/providers/types";
import { parseKeyring } from "../../../functions/destinations/crypto";
import { withTenant } from "../../../shared/db";
import { ApiError } from "../../../shared/errors";
import { parseEnv } from "../../common/parseEnv";
import { requires } from "../access";
import type { ApiEnv } from "../context";
import { contentJobVarsSchema } from "../env";
import { mutationWithCall, query, verbContext } from "../handlers";
import {
  apiRoute,
  dateTime,
  ErrorSchema,
  errorResponses,
  IdempotencyHeaderSchema,
  json,
  listOf,
  PageQuerySchema,
  page,
} from "../schemas";
import { ContentContainerWithDownloadSchema, containerStorage } from "./contentContainers";

// Content jobs: "generate a reel about our latest product". A job is checked and recorded here (content
// layer on, the storage matrix, the org's storage config, references of the same project), then run by the
// content Worker: its Workflow for storage true / { id }, its in-memory path for storage false. The brief
// never reaches a row in plain text (sealed while the job runs, cleared when it ends) and never a log.

const projectId = z
  .string()
  .max(64)
  .openapi({ param: { name: "projectId", in: "path" } });
const ProjectParams = z.object({ projectId });
const JobParams = z.object({
  projectId,
  jobId: z
    .string()
    .max(64)
    .openapi({ param: { name: "jobId", in: "path" } }),
});

export const CreateContentJobSchema = z
  .object({
    kind: z.enum(CONTENT_KINDS).openapi({
      description:
        "copy (text/plain), image (PNG), reel_storyboard (application/vnd.layers.storyboard+json) or video (no provider makes it yet: the job fails with unsupported_kind).",
    }),
    brief: z.union([z.string().trim().min(1).max(4_000), briefSchema]).openapi({
      description:
        "What to make: a text (≤ 4,000 characters) or { text, tone?, audience?, callToAction? }. Used for the prompt only: never stored in plain text, never logged.",
      example: "A 15-second reel about our new trail running shoe, upbeat.",
    }),
    product: productSchema.optional().openapi({
      description:
        "{ name?, description?, features?[≤ 20], url? } (the URL's query is never sent to a model).",
    }),
    references: z
      .array(z.string().min(1).max(64))
      .max(MAX_REFERENCES)
      .optional()
      .openapi({
        description: `Up to ${MAX_REFERENCES} containers of this project whose copy the model should stay consistent with.`,
      }),
    frames: z
      .number()
      .int()
      .min(STORYBOARD_FRAMES.min)
      .max(STORYBOARD_FRAMES.max)
      .optional()
      .openapi({
        description: `Frames of a reel storyboard (${STORYBOARD_FRAMES.min}–${STORYBOARD_FRAMES.max}, default ${STORYBOARD_FRAMES.default}).`,
      }),
    storage: z
      .union([z.boolean(), z.object({ id: z.string().min(1).max(64) }).strict()])
      .default(true)
      .openapi({
        description:
          "true (default): our bucket; { id }: your bucket (a storage config; async only); false: nothing kept, the bytes are the answer (sync only).",
      }),
    async: z.boolean().default(true).openapi({
      description:
        "true (default): 202 now, webhooks later. false: wait for the result (bounded, see README).",
    }),
  })
  .strict()
  .openapi("CreateContentJob", {
    example: { kind: "copy", brief: "Launch of our trail running shoe, upbeat.", storage: true, async: true },
  });

const MediaSchema = z
  .object({ sizeBytes: z.number().int(), sha256: z.string(), mediaType: z.string() })
  .nullable()
  .openapi({ description: "What was generated (set once the job succeeded)." });

export const ContentJobSchema = z
  .object({
    id: z.string().openapi({ example: "cjob_4sV9qLm2Xc8RtY6pKw3N" }),
    object: z.literal("content_job"),
    projectId: z.string(),
    kind: z.enum(CONTENT_KINDS),
    status: z.enum(["queued", "running", "succeeded", "failed"]),
    storage: z.object({
      mode: z.enum(["cloud", "own", "none"]),
      storageConfigId: z.string().nullable(),
    }),
    async: z.boolean(),
    provider: z.string().nullable(),
    model: z.string().nullable(),
    errorCode: z.string().nullable().openapi({
      description:
        "Why it failed: provider_timeout, provider_unavailable, provider_rejected, provider_auth_failed, provider_bad_response, unsupported_kind, invalid_prompt_input, storage_unavailable, storage_access_denied, storage_credentials_rejected, storage_bucket_not_found, storage_config_not_found, content_unavailable, internal_error.",
    }),
    attempts: z.number().int().openapi({ description: "Workflow runs of the job's first step." }),
    media: MediaSchema,
    containerId: z.string().nullable(),
    createdAt: dateTime(),
    startedAt: dateTime().nullable(),
    finishedAt: dateTime().nullable(),
  })
  .openapi("ContentJob");

export const ContentJobResultSchema = z
  .object({ job: ContentJobSchema, container: ContentContainerWithDownloadSchema.nullable() })
  .openapi("ContentJobResult");

const routes = {
  create: apiRoute({
    ...requires("developer"),
    method: "post",
    path: "/v1/projects/{projectId}/content-jobs",
    tags: ["Content"],
    operationId: "createContentJob",
    summary: "Generate copy, an image or a reel storyboard",
    description:
      "Storage matrix: storage true sync or async, { id } async only, false sync only (else 400 " +
      "storage_mode_not_allowed). Async: 202 with the job; content_job.succeeded / content_job.failed " +
      "webhooks follow. Sync with storage true: 200 with the job and its container (signed download URL), " +
      "or 202 with the job when it takes longer than the sync bound (CONTENT_SYNC_WAIT_MS, 30 s). Sync with " +
      "storage false: 200 with the media bytes as the body (Content-Type its type; X-Layers-Job-Id, " +
      "X-Layers-Sha256), nothing kept; a replay with the same Idempotency-Key answers the job as JSON. A " +
      "generation that fails: 422 content_generation_failed (details: jobId, errorCode). Needs the project's " +
      "content layer (409 layer_disabled).",
    request: {
      params: ProjectParams,
      headers: IdempotencyHeaderSchema,
      body: { content: { "application/json": { schema: CreateContentJobSchema } }, required: true },
    },
    responses: {
      200: {
        description: "Done (sync): the job and its container, or for storage false the media bytes",
        content: {
          "application/json": { schema: ContentJobResultSchema },
          "application/octet-stream": { schema: z.string().openapi({ format: "binary" }) },
        },
      },
      202: json(ContentJobSchema, "Accepted: the job runs; webhooks tell when it ends"),
      ...errorResponses(400, 403, 404, 409, 422),
      503: json(
        ErrorSchema,
        "content_unavailable (the job could not be started; it is failed), or the API briefly unavailable",
      ),
    },
  }),
  list: apiRoute({
    ...requires("read_only"),
    method: "get",
    path: "/v1/projects/{projectId}/content-jobs",
    tags: ["Content"],
    operationId: "listContentJobs",
    summary: "List a project's content jobs, newest first",
    description: "Job metadata only (kept 400 days): never a brief or product text.",
    request: { params: ProjectParams, query: PageQuerySchema },
    responses: {
      200: json(listOf(ContentJobSchema, "ContentJobList"), "A page of content jobs"),
      ...errorResponses(400, 404),
    },
  }),
  get: apiRoute({
    ...requires("read_only"),
    method: "get",
    path: "/v1/projects/{projectId}/content-jobs/{jobId}",
    tags: ["Content"],
    operationId: "getContentJob",
    summary: "Get a content job (with its container and a fresh download URL once it succeeded)",
    description: "The job, and for a succeeded job with storage true or { id } its container.",
    request: { params: JobParams },
    responses: { 200: json(ContentJobResultSchema, "The job"), ...errorResponses(400, 404) },
  }),
};

type Called =
  | { kind: "started"; job: JobView; finished: boolean }
  | { kind: "media"; job: JobView; media: Uint8Array<ArrayBuffer>; mediaType: string; sha256: string }
  | { kind: "failed"; job: JobView; errorCode: string };

const TERMINAL = new Set(["complete", "errored", "terminated"]);

/** Polls the Workflow instance until it ends or `boundMs` passes; true when it ended. */
async function waitForWorkflow(instance: WorkflowInstance, boundMs: number): Promise<boolean> {
  const deadline = Date.now() + boundMs;
  for (;;) {
    const { status } = await instance.status();
    if (TERMINAL.has(status)) return true;
    if (Date.now() >= deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, Math.min(100, Math.max(1, deadline - Date.now()))));
  }
}

/** Marks a job that never started as failed (its own transaction) and answers 503. */
async function unstarted(c: Context<ApiEnv>, job: JobView): Promise<never> {
  await withTenant(c.get("db"), c.get("auth").orgId, (tx) =>
    failUnstartedJob(verbContext(c, tx), job, "content_unavailable"),
  );
  c.get("log").error("content job could not be started", { jobId: job.id });
  throw new ApiError(
    "content_unavailable",
    `Content job ${job.id} could not be started; it is marked failed. Retry.`,
  );
}

export function registerContentJobRoutes(app: OpenAPIHono<ApiEnv>) {
  app.openapi(routes.create, (c) => {
    const { projectId: pid } = c.req.valid("param");
    const body = c.req.valid("json");
    const input = { ...body, brief: typeof body.brief === "string" ? { text: body.brief } : body.brief };
    const vars = parseEnv(contentJobVarsSchema, c.env);
    // What a replay answers for a 200: the JSON result without the signed URL (never stored).
    let replayBody: unknown;
    return mutationWithCall(c, {
      load: (ctx) => createContentJob(ctx, pid, input, () => parseKeyring(c.env)),
      call: async (job): Promise<Called> => {
        const ref = { jobId: job.id, orgId: c.get("auth").orgId, projectId: pid };
        if (job.storageMode === "none") {
          let answer: Response;
          try {
            answer = await c.env.CONTENT.fetch("https://content.internal/generate-inline", {
              method: "POST",
              headers: { "content-type": "application/json" },
              body: JSON.stringify({
                ref,
                request: {
                  kind: input.kind,
                  brief: input.brief,
                  ...(input.product ? { product: input.product } : {}),
                  ...(input.references?.length ? { references: [...new Set(input.references)] } : {}),
                  ...(input.frames === undefined ? {} : { frames: input.frames }),
                },
              }),
            });
          } catch {
            return unstarted(c, job);
          }
          if (answer.status !== 200) {
            const error = (await answer.json().catch(() => ({}))) as { error?: { code?: unknown } };
            const code = typeof error.error?.code === "string" ? error.error.code : "internal_error";
            return { kind: "failed", job, errorCode: code };
          }
          return {
            kind: "media",
            job,
            media: new Uint8Array(await answer.arrayBuffer()),
            mediaType: answer.headers.get("content-type") ?? "application/octet-stream",
            sha256: answer.headers.get("x-layers-sha256") ?? "",
          };
        }
        let instance: WorkflowInstance;
        try {
          instance = await c.env.CONTENT_JOBS.create({ id: job.id, params: ref });
        } catch {
          return unstarted(c, job);
        }
        const finished = job.async ? false : await waitForWorkflow(instance, vars.CONTENT_SYNC_WAIT_MS);
        return { kind: "started", job, finished };
      },
      record: async (ctx, called) => {
        const job = (await getJob(ctx.db, called.job.id)) ?? called.job;
        if (called.kind === "media") {
          replayBody = { job: contentJobJson(job, null), container: null };
          return c.body(called.media, 200, {
            "Content-Type": called.mediaType,
            "X-Layers-Job-Id": job.id,
            "X-Layers-Sha256": called.sha256,
            "Cache-Control": "no-store",
          });
        }
        if (called.kind === "failed" || job.status === "failed") {
          throw new ApiError(
            "content_generation_failed",
            `Content job ${job.id} failed (${job.errorCode ?? (called.kind === "failed" ? called.errorCode : "internal_error")}).`,
            {
              details: [
                {
                  jobId: job.id,
                  errorCode: job.errorCode ?? (called.kind === "failed" ? called.errorCode : null),
                },
              ],
            },
          );
        }
        if (job.status !== "succeeded" || job.async) {
          replayBody = contentJobJson(job, null);
          return c.json(contentJobJson(job, null), 202);
        }
        const container = await getContainerOfJob(ctx.db, job.id);
        const jobBody = contentJobJson(job, container?.id ?? null);
        replayBody = {
          job: jobBody,
          container: container && containerWithDownload(container, REPLAY_DOWNLOAD),
        };
        const download = container && (await containerDownload(ctx, container, containerStorage(c.env)));
        return c.json(
          { job: jobBody, container: container && download && containerWithDownload(container, download) },
          200,
        );
      },
      envelope: (_called, response) => ({ status: response.status, body: replayBody }),
    });
  });

  app.openapi(routes.list, (c) =>
    query(c, async (ctx) => {
      const { projectId: pid } = c.req.valid("param");
      const { limit, starting_after } = c.req.valid("query");
      const result = await listProjectJobs(ctx, pid, { limit, startingAfter: starting_after });
      return c.json(
        page({
          data: result.data.map((r) => contentJobJson(r.job, r.containerId)),
          hasMore: result.hasMore,
        }),
        200,
      );
    }),
  );

  app.openapi(routes.get, (c) =>
    query(c, async (ctx) => {
      const { projectId: pid, jobId } = c.req.valid("param");
      const { job, container } = await getProjectJob(ctx, pid, jobId);
      const download = container && (await containerDownload(ctx, container, containerStorage(c.env)));
      return c.json(
        {
          job: contentJobJson(job, container?.id ?? null),
          container: container && download && containerWithDownload(container, download),
        },
        200,
      );
    }),
  );
}
