import { type OpenAPIHono, z } from "@hono/zod-openapi";
import { PROJECT_LAYERS, type ProjectLayer, projectLayerJson } from "../../../functions/projects/layers";
import {
  listVisibleProjectLayers,
  MAX_LAYER_SETTINGS,
  setProjectLayer,
} from "../../../functions/projects/layerVerbs";
import { ApiError } from "../../../shared/errors";
import { requires } from "../access";
import type { ApiEnv } from "../context";
import { mutation, query } from "../handlers";
import { apiRoute, dateTime, errorResponses, IdempotencyHeaderSchema, json } from "../schemas";

// A project's product layers: `attribution` (the conversion relay) and `content` (content generation).
// Reading needs read_only; switching needs admin (it starts or stops sending data to ad platforms).

export const ProjectLayerSchema = z
  .object({
    object: z.literal("project_layer"),
    projectId: z.string(),
    layer: z.enum(PROJECT_LAYERS),
    enabled: z.boolean(),
    settings: z
      .record(z.string(), z.unknown())
      .openapi({ description: "The partner's labels for the layer." }),
    updatedAt: dateTime().nullable().openapi({ description: "null while the layer has its default." }),
  })
  .openapi("ProjectLayer");

const LayerListSchema = z
  .object({ object: z.literal("list"), data: z.array(ProjectLayerSchema) })
  .openapi("ProjectLayerList");

const SettingsSchema = z
  .record(
    z.string().regex(/^[A-Za-z][A-Za-z0-9_]{0,63}$/, "1–64 letters, digits or _, starting with a letter."),
    z.union([z.string().max(200), z.number(), z.boolean(), z.null()]),
  )
  .refine((o) => Object.keys(o).length <= MAX_LAYER_SETTINGS, `At most ${MAX_LAYER_SETTINGS} settings.`)
  .openapi({
    description:
      `At most ${MAX_LAYER_SETTINGS} settings of scalar values (strings ≤ 200 characters); names that read ` +
      "like credentials are refused. Replaces the layer's settings; omitted, they stay.",
  });

const PutLayerSchema = z
  .object({ enabled: z.boolean(), settings: SettingsSchema.optional() })
  .strict()
  .openapi("PutProjectLayer", { example: { enabled: false } });

const ProjectParams = z.object({
  projectId: z
    .string()
    .max(64)
    .openapi({ param: { name: "projectId", in: "path" } }),
});
const LayerParams = ProjectParams.extend({
  layer: z
    .string()
    .max(64)
    .openapi({
      param: { name: "layer", in: "path" },
      description: `One of ${PROJECT_LAYERS.join(", ")}; another name is a 404 (not_found) naming them.`,
      example: "content",
    }),
});

const routes = {
  list: apiRoute({
    ...requires("read_only"),
    method: "get",
    path: "/v1/projects/{projectId}/layers",
    tags: ["Layers"],
    operationId: "listProjectLayers",
    summary: "List a project's product layers (attribution, content) and whether each is on",
    description:
      "Every layer with its state; a layer never switched has its default (attribution on, content off).",
    request: { params: ProjectParams },
    responses: { 200: json(LayerListSchema, "The project's layers"), ...errorResponses(400, 404) },
  }),
  put: apiRoute({
    ...requires("admin"),
    method: "put",
    path: "/v1/projects/{projectId}/layers/{layer}",
    tags: ["Layers"],
    operationId: "putProjectLayer",
    summary: "Switch a product layer on or off (admin)",
    description:
      "Switching `attribution` off stops the relay: destination create/update/test-send answer 409 " +
      "layer_disabled and events are no longer relayed (events the consumer handles after the change " +
      "commits, and relay batches sent after it). Switching `content` off refuses new content use. " +
      "Idempotent: the same PUT again changes nothing. An unknown layer is a 404 (not_found) naming the layers.",
    request: {
      params: LayerParams,
      headers: IdempotencyHeaderSchema,
      body: { content: { "application/json": { schema: PutLayerSchema } }, required: true },
    },
    responses: { 200: json(ProjectLayerSchema, "The layer"), ...errorResponses(400, 403, 404, 409, 422) },
  }),
};

/** The layer a path names, or 404 listing the layers (checked against the list, never a lookup by name). */
function knownLayer(name: string): ProjectLayer {
  const layer = PROJECT_LAYERS.find((l) => l === name);
  if (!layer)
    throw new ApiError("not_found", `No layer ${name}: the layers are ${PROJECT_LAYERS.join(", ")}.`);
  return layer;
}

export function registerProjectLayerRoutes(app: OpenAPIHono<ApiEnv>) {
  app.openapi(routes.list, (c) =>
    query(c, async (ctx) => {
      const { projectId } = c.req.valid("param");
      const layers = await listVisibleProjectLayers(ctx, projectId);
      return c.json(
        { object: "list" as const, data: layers.map((l) => projectLayerJson(projectId, l)) },
        200,
      );
    }),
  );

  app.openapi(routes.put, (c) =>
    mutation(c, async (ctx) => {
      const { projectId, layer } = c.req.valid("param");
      const state = await setProjectLayer(ctx, projectId, knownLayer(layer), c.req.valid("json"));
      return c.json(projectLayerJson(projectId, state), 200);
    }),
  );
}
