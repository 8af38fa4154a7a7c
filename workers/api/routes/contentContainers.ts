import { type OpenAPIHono, z } from "@hono/zod-openapi";
import {
  CONTAINER_URL_SECONDS,
  type ContainerStorage,
  containerJson,
  containerWithDownload,
  deleteContainerObject,
  getProjectContainer,
  listProjectContainers,
  loadContainerDeletion,
  recordContainerDeletion,
} from "../../../functions/content/containerVerbs";
import { parseKeyring } from "../../../functions/destinations/crypto";
import { objectStoreFor } from "../../../functions/storage/config";
import { createS3Store } from "../../../functions/storage/objectStore";
import { parseEnv } from "../../common/parseEnv";
import { requires } from "../access";
import type { ApiEnv } from "../context";
import { bucketVarsSchema } from "../env";
import { mutationWithCall, query } from "../handlers";
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

// Generated content of a project (content containers): list, get with a signed download URL, delete (the
// object too). Reading needs read_only; deleting needs developer, as for the project's other resources.

const KINDS = ["copy", "image", "reel_storyboard", "video"] as const;

export const ContentContainerSchema = z
  .object({
    id: z.string().openapi({ example: "ctr_4sV9qLm2Xc8RtY6pKw3N" }),
    object: z.literal("content_container"),
    projectId: z.string(),
    jobId: z.string().nullable().openapi({ description: "The content job that wrote it." }),
    kind: z.enum(KINDS),
    storageMode: z.enum(["cloud", "own"]).openapi({
      description: "cloud: our media bucket; own: the partner's bucket (storageConfigId).",
    }),
    storageConfigId: z.string().nullable(),
    location: z
      .object({ bucket: z.string(), key: z.string() })
      .openapi({ description: "Where the object is (never a credential)." }),
    sizeBytes: z.number().int(),
    sha256: z.string(),
    mediaType: z.string().openapi({ example: "image/png" }),
    provider: z.string(),
    model: z.string(),
    createdAt: dateTime(),
    expiresAt: dateTime()
      .nullable()
      .openapi({ description: "Set when the project is archived: archived_at + 90 days, then deleted." }),
  })
  .openapi("ContentContainer");

export const ContentContainerWithDownloadSchema = ContentContainerSchema.extend({
  download: z
    .object({
      url: z
        .string()
        .nullable()
        .openapi({
          description: `A presigned GET URL, valid ${CONTAINER_URL_SECONDS} s; no API key needed. null when it cannot be made (unavailableReason says why).`,
        }),
      expiresAt: dateTime().nullable(),
      unavailableReason: z
        .enum(["storage_config_deleted", "idempotent_replay"])
        .nullable()
        .openapi({
          description:
            "storage_config_deleted: the own-bucket config the object was written with is gone. idempotent_replay: " +
            "the answer is a stored replay, which never holds a signed URL (GET the container or the job for one).",
        }),
    })
    .openapi("ContentDownload"),
}).openapi("ContentContainerWithDownload");

const ProjectParams = z.object({
  projectId: z
    .string()
    .max(64)
    .openapi({ param: { name: "projectId", in: "path" } }),
});
const ContainerParams = ProjectParams.extend({
  containerId: z
    .string()
    .max(64)
    .openapi({ param: { name: "containerId", in: "path" } }),
});

const storageUnavailable = {
  503: json(
    ErrorSchema,
    "Object storage did not answer or is not configured (storage_unavailable: nothing was deleted, retry), " +
      "the keyring of a partner's bucket credentials is missing (destination_keys_unavailable), or the API " +
      "briefly unavailable (database_unavailable)",
  ),
};

const routes = {
  list: apiRoute({
    ...requires("read_only"),
    method: "get",
    path: "/v1/projects/{projectId}/content-containers",
    tags: ["Content containers"],
    operationId: "listContentContainers",
    summary: "List a project's generated content, newest first",
    description: "Lists content containers (metadata; no download URL), optionally of one kind.",
    request: {
      params: ProjectParams,
      query: PageQuerySchema.extend({
        kind: z.enum(KINDS).optional().openapi({ description: "Only this kind." }),
      }),
    },
    responses: {
      200: json(listOf(ContentContainerSchema, "ContentContainerList"), "A page of containers"),
      ...errorResponses(400, 404),
    },
  }),
  get: apiRoute({
    ...requires("read_only"),
    method: "get",
    path: "/v1/projects/{projectId}/content-containers/{containerId}",
    tags: ["Content containers"],
    operationId: "getContentContainer",
    summary: `Get a container with a download URL valid ${CONTAINER_URL_SECONDS / 60} minutes`,
    description:
      `The container and a presigned download URL valid ${CONTAINER_URL_SECONDS} s (ask again for a new one). ` +
      "Own-bucket containers are signed with the partner's storage config; when that config was deleted, " +
      "the answer carries the location only.",
    request: { params: ContainerParams },
    responses: {
      200: json(ContentContainerWithDownloadSchema, "The container"),
      ...errorResponses(400, 404),
      ...storageUnavailable,
    },
  }),
  delete: apiRoute({
    ...requires("developer"),
    method: "delete",
    path: "/v1/projects/{projectId}/content-containers/{containerId}",
    tags: ["Content containers"],
    operationId: "deleteContentContainer",
    summary: "Delete a container and its object (ours, or in the partner's bucket)",
    description:
      "Deletes the object, then the row (and its place in ads content). When object storage fails: 503 " +
      "storage_unavailable and the container stays, so a retry finishes. An own-bucket object whose " +
      "storage config was deleted stays in the partner's bucket (the audit row says objectDeleted: false).",
    request: { params: ContainerParams, headers: IdempotencyHeaderSchema },
    responses: {
      204: { description: "Deleted" },
      ...errorResponses(400, 403, 404, 409, 422),
      ...storageUnavailable,
    },
  }),
};

/** Our media bucket and partners' buckets, as this Worker is configured (container and content-job routes). */
export function containerStorage(env: ApiEnv["Bindings"]): ContainerStorage {
  const vars = parseEnv(bucketVarsSchema, env);
  return {
    media: objectStoreFor(vars, vars.MEDIA_BUCKET),
    partner: (target, bucket) =>
      createS3Store({
        endpoint: target.endpoint,
        region: target.region,
        bucket,
        accessKeyId: target.accessKeyId,
        secretAccessKey: target.secretAccessKey,
        forcePathStyle: target.forcePathStyle,
        maxAttempts: 1,
      }),
    keys: () => parseKeyring(env),
  };
}

export function registerContentContainerRoutes(app: OpenAPIHono<ApiEnv>) {
  app.openapi(routes.list, (c) =>
    query(c, async (ctx) => {
      const { limit, starting_after, kind } = c.req.valid("query");
      const result = await listProjectContainers(ctx, c.req.valid("param").projectId, {
        limit,
        startingAfter: starting_after,
        kind,
      });
      return c.json(page({ data: result.data.map(containerJson), hasMore: result.hasMore }), 200);
    }),
  );

  app.openapi(routes.get, (c) =>
    query(c, async (ctx) => {
      const { projectId, containerId } = c.req.valid("param");
      const got = await getProjectContainer(ctx, projectId, containerId, containerStorage(c.env));
      return c.json(containerWithDownload(got.container, got.download), 200);
    }),
  );

  // No transaction is held while object storage is called: load, delete the object, then the row.
  app.openapi(routes.delete, (c) => {
    const { projectId, containerId } = c.req.valid("param");
    const storage = containerStorage(c.env);
    return mutationWithCall(c, {
      load: (ctx) => loadContainerDeletion(ctx, projectId, containerId, storage),
      call: (loaded) => deleteContainerObject(c.get("log"), loaded),
      record: async (ctx, deleted) => {
        await recordContainerDeletion(ctx, deleted);
        return c.body(null, 204);
      },
    });
  });
}
