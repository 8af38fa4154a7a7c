import { type OpenAPIHono, z } from "@hono/zod-openapi";
import { parseKeyring } from "../../../functions/destinations/crypto";
import { CHECK_ERROR_CODES, probeStorage } from "../../../functions/storageConfigs/probe";
import {
  createStorageConfig,
  deleteOrgStorageConfig,
  getOrgStorageConfig,
  listOrgStorageConfigs,
  loadStorageCheck,
  MAX_STORAGE_CONFIGS_PER_ORG,
  recordStorageCheck,
  storageConfigJson,
} from "../../../functions/storageConfigs/verbs";
import { parseEnv } from "../../common/parseEnv";
import { requires } from "../access";
import type { ApiEnv } from "../context";
import { storageConfigVarsSchema } from "../env";
import { mutation, mutationWithCall, query } from "../handlers";
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

// Storage configs: a partner's own S3-compatible bucket (R2, S3, …) where generated content can be written
// ("own" storage). Org-wide: a config serves every project, so keys restricted to one project are refused.
// Roles as for destinations: reading needs developer; creating, deleting and checking need admin, because
// they decide where content goes and use the stored credential. The secret access key is write-only: no
// answer, audit row, log or stored idempotent replay holds it, only `secretLast4`.

const printable = (min: number, max: number) =>
  z
    .string()
    .min(min)
    .max(max)
    .regex(/^[\x21-\x7E]+$/, "Printable ASCII without spaces.");

export const CreateStorageConfigSchema = z
  .object({
    name: z.string().trim().min(1).max(100).optional().openapi({
      description: "A label for people (1–100 characters); defaults to the bucket.",
      example: "Brand assets (R2)",
    }),
    endpoint: z
      .string()
      .max(500)
      .openapi({
        description:
          "The S3 API origin (https only; no path, query or credentials; not a private or loopback " +
          "address). R2: https://<account-id>.r2.cloudflarestorage.com.",
        example: "https://0123456789abcdef0123456789abcdef.r2.cloudflarestorage.com",
      }),
    region: z
      .string()
      .regex(/^[a-z0-9-]{1,64}$/, "1–64 lower-case letters, digits or '-'.")
      .openapi({ description: "The bucket's region; `auto` for R2.", example: "auto" }),
    bucket: z
      .string()
      .regex(
        /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/,
        "3–63 lower-case letters, digits, '.' or '-', starting and ending with a letter or digit.",
      )
      .openapi({ example: "brand-assets" }),
    prefix: z
      .string()
      .max(512)
      .regex(
        /^(?!\/)(?!.*\/\/)(?!(?:.*\/)?\.\.?(?:\/|$))[A-Za-z0-9!_.*'()/-]*$/,
        "Letters, digits and !_.*'()/- only; no leading '/', no '//', no '.' or '..' segment.",
      )
      .default("")
      .openapi({
        description:
          "Where objects go inside the bucket (≤ 512 characters); stored ending in '/'. Empty: the root.",
        example: "layers/generated/",
      }),
    forcePathStyle: z.boolean().default(false).openapi({
      description:
        "Address the bucket as <endpoint>/<bucket> instead of <bucket>.<endpoint> (MinIO and the like).",
    }),
    accessKeyId: printable(1, 128).openapi({
      description: "1–128 characters.",
      example: "AKIAEXAMPLEKEY000000",
    }),
    secretAccessKey: printable(8, 256).openapi({
      description: "8–256 characters. Write-only: stored encrypted; answers show `secretLast4`.",
      example: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    }),
  })
  .strict()
  .openapi("CreateStorageConfig", {
    example: {
      name: "Brand assets (R2)",
      endpoint: "https://0123456789abcdef0123456789abcdef.r2.cloudflarestorage.com",
      region: "auto",
      bucket: "brand-assets",
      prefix: "layers/generated/",
      forcePathStyle: false,
      accessKeyId: "0123456789abcdef0123456789abcdef",
      secretAccessKey: "exampleSecretAccessKey0000000000000000000000000000000000000000000",
    },
  });

export const StorageConfigSchema = z
  .object({
    id: z.string().openapi({ example: "stcfg_4sV9qLm2Xc8RtY6pKw3N" }),
    object: z.literal("storage_config"),
    name: z.string(),
    endpoint: z.string(),
    region: z.string(),
    bucket: z.string(),
    prefix: z.string(),
    forcePathStyle: z.boolean(),
    accessKeyId: z.string(),
    secretLast4: z.string().openapi({ description: "Last 4 characters of the secret access key." }),
    checkedAt: dateTime().nullable().openapi({ description: "When the last check ran; null before any." }),
    checkStatus: z.enum(["ok", "failed"]).nullable(),
    createdAt: dateTime(),
    updatedAt: dateTime(),
  })
  .openapi("StorageConfig");

export const StorageCheckSchema = z
  .object({
    object: z.literal("storage_config_check"),
    storageConfigId: z.string(),
    status: z.enum(["ok", "failed"]).openapi({
      description: "ok: a probe object was written under the prefix and deleted again.",
    }),
    step: z.enum(["put", "delete"]).nullable().openapi({ description: "Which call failed." }),
    error: z
      .object({
        code: z.enum(CHECK_ERROR_CODES).openapi({
          description:
            "credentials_rejected: wrong access key id or secret; access_denied: the key may not write or " +
            "delete under the prefix; bucket_not_found; endpoint_unreachable: no connection or no answer in " +
            "time; unexpected_response: anything else.",
        }),
        providerCode: z
          .string()
          .nullable()
          .openapi({ description: "The S3 error name the endpoint sent.", example: "NoSuchBucket" }),
        httpStatus: z.number().int().nullable(),
        message: z.string(),
      })
      .nullable(),
    checkedAt: dateTime(),
  })
  .openapi("StorageConfigCheck");

const IdParams = z.object({
  id: z
    .string()
    .max(64)
    .openapi({ param: { name: "id", in: "path" } }),
});

const unavailable = {
  503: json(
    ErrorSchema,
    "Keys unavailable (destination_keys_unavailable: the keyring that seals the secret), or the API " +
      "briefly unavailable (database_unavailable); retry",
  ),
};

const routes = {
  create: apiRoute({
    ...requires("admin", { orgWide: true }),
    method: "post",
    path: "/v1/storage-configs",
    tags: ["Storage configs"],
    operationId: "createStorageConfig",
    summary: "Add a bucket of your own for generated content (admin)",
    description:
      `Stores an S3-compatible bucket and its credentials (at most ${MAX_STORAGE_CONFIGS_PER_ORG} per org: ` +
      "409 storage_config_limit_reached). The secret access key is write-only and stored encrypted. Nothing " +
      "is called here: POST …/check tests the credentials.",
    request: {
      headers: IdempotencyHeaderSchema,
      body: { content: { "application/json": { schema: CreateStorageConfigSchema } }, required: true },
    },
    responses: {
      201: json(StorageConfigSchema, "Created"),
      ...errorResponses(400, 403, 409, 422),
      ...unavailable,
    },
  }),
  list: apiRoute({
    ...requires("developer", { orgWide: true }),
    method: "get",
    path: "/v1/storage-configs",
    tags: ["Storage configs"],
    operationId: "listStorageConfigs",
    summary: "List the org's storage configs, newest first",
    description: "Lists storage configs, newest first. Secrets are never shown, only `secretLast4`.",
    request: { query: PageQuerySchema },
    responses: {
      200: json(listOf(StorageConfigSchema, "StorageConfigList"), "A page of storage configs"),
      ...errorResponses(400, 403),
    },
  }),
  get: apiRoute({
    ...requires("developer", { orgWide: true }),
    method: "get",
    path: "/v1/storage-configs/{id}",
    tags: ["Storage configs"],
    operationId: "getStorageConfig",
    summary: "Get a storage config",
    description: "Returns one storage config. The secret access key is never shown, only `secretLast4`.",
    request: { params: IdParams },
    responses: { 200: json(StorageConfigSchema, "The storage config"), ...errorResponses(400, 403, 404) },
  }),
  delete: apiRoute({
    ...requires("admin", { orgWide: true }),
    method: "delete",
    path: "/v1/storage-configs/{id}",
    tags: ["Storage configs"],
    operationId: "deleteStorageConfig",
    summary: "Delete a storage config and its stored secret (admin)",
    description:
      "Deletes the config and its encrypted secret; objects already in the bucket stay there. Refused with " +
      "409 storage_config_in_use while a content job writing to it is queued or running.",
    request: { params: IdParams, headers: IdempotencyHeaderSchema },
    responses: { 204: { description: "Deleted" }, ...errorResponses(400, 403, 404, 409, 422) },
  }),
  check: apiRoute({
    ...requires("admin", { orgWide: true }),
    method: "post",
    path: "/v1/storage-configs/{id}/check",
    tags: ["Storage configs"],
    operationId: "checkStorageConfig",
    summary: "Write and delete a probe object in the bucket with the stored credentials (admin)",
    description:
      "Writes `<prefix>layers-storage-check/<id>.txt` and deletes it. A failure is an answer (200, status " +
      "`failed`) with a stable error code, never the endpoint's own message. The result is kept on the " +
      "config (`checkStatus`, `checkedAt`).",
    request: { params: IdParams, headers: IdempotencyHeaderSchema },
    responses: {
      200: json(StorageCheckSchema, "What the check found"),
      ...errorResponses(400, 403, 404, 409, 422),
      ...unavailable,
    },
  }),
};

export function registerStorageConfigRoutes(app: OpenAPIHono<ApiEnv>) {
  const keyring = (c: { env: ApiEnv["Bindings"] }) => () => parseKeyring(c.env);

  app.openapi(routes.create, (c) =>
    mutation(c, async (ctx) => {
      const vars = parseEnv(storageConfigVarsSchema, c.env);
      const created = await createStorageConfig(ctx, c.req.valid("json"), keyring(c), {
        allowLocalHttp: vars.STORAGE_ALLOW_LOCAL_HTTP === "true",
      });
      return c.json(storageConfigJson(created), 201);
    }),
  );

  app.openapi(routes.list, (c) =>
    query(c, async (ctx) => {
      const { limit, starting_after } = c.req.valid("query");
      const result = await listOrgStorageConfigs(ctx, { limit, startingAfter: starting_after });
      return c.json(page({ data: result.data.map(storageConfigJson), hasMore: result.hasMore }), 200);
    }),
  );

  app.openapi(routes.get, (c) =>
    query(c, async (ctx) =>
      c.json(storageConfigJson(await getOrgStorageConfig(ctx, c.req.valid("param").id)), 200),
    ),
  );

  app.openapi(routes.delete, (c) =>
    mutation(c, async (ctx) => {
      await deleteOrgStorageConfig(ctx, c.req.valid("param").id);
      return c.body(null, 204);
    }),
  );

  // No transaction is held while the partner's endpoint is called (mutationWithCall): load, probe, record.
  app.openapi(routes.check, (c) => {
    const { id } = c.req.valid("param");
    const now = c.get("now");
    return mutationWithCall(c, {
      load: (ctx) => loadStorageCheck(ctx, id, keyring(c)),
      call: (target) => {
        const vars = parseEnv(storageConfigVarsSchema, c.env);
        return probeStorage(target, {
          timeoutMs: vars.STORAGE_CHECK_TIMEOUT_MS,
          probeId: crypto.randomUUID(),
          now,
        });
      },
      record: async (ctx, result) => c.json(await recordStorageCheck(ctx, id, result), 200),
    });
  });
}
