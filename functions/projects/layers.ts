import type { Db } from "../../shared/db";
import type { ProjectLayer } from "../../shared/db/columnTypes";
import { ApiError } from "../../shared/errors";

// A project's product layers: `attribution` (the event relay to ad platforms) and `content` (content
// generation). A layer is on when its project_layers row says enabled; a project without a row for a layer
// has the layer's default: attribution on (what every project did before layers existed), content off
// until a partner switches it on. Every caller asks here, so the default lives in one place.

export const PROJECT_LAYERS = ["attribution", "content"] as const satisfies readonly ProjectLayer[];
export type { ProjectLayer };

export const LAYER_DEFAULTS: Readonly<Record<ProjectLayer, boolean>> = { attribution: true, content: false };

export interface ProjectLayerState {
  layer: ProjectLayer;
  enabled: boolean;
  settings: Record<string, unknown>;
  updatedAt: Date | null;
}

/** Every layer of one project, defaults filled in (the transaction is scoped to the project's org). */
export async function listProjectLayers(db: Db, projectId: string): Promise<ProjectLayerState[]> {
  const rows = await db
    .selectFrom("project_layers")
    .select(["layer", "enabled", "settings", "updated_at"])
    .where("project_id", "=", projectId)
    .execute();
  return PROJECT_LAYERS.map((layer) => {
    const row = rows.find((r) => r.layer === layer);
    return row
      ? {
          layer,
          enabled: row.enabled,
          settings: row.settings as Record<string, unknown>,
          updatedAt: row.updated_at,
        }
      : { layer, enabled: LAYER_DEFAULTS[layer], settings: {}, updatedAt: null };
  });
}

export async function isLayerEnabled(db: Db, projectId: string, layer: ProjectLayer): Promise<boolean> {
  const row = await db
    .selectFrom("project_layers")
    .select("enabled")
    .where("project_id", "=", projectId)
    .where("layer", "=", layer)
    .executeTakeFirst();
  return row ? row.enabled : LAYER_DEFAULTS[layer];
}

/** Throws `layer_disabled` (409) naming the layer and how to switch it on. */
export async function requireLayer(db: Db, projectId: string, layer: ProjectLayer): Promise<void> {
  if (await isLayerEnabled(db, projectId, layer)) return;
  throw new ApiError(
    "layer_disabled",
    `The project has the ${layer} layer switched off: switch it on with PUT /v1/projects/${projectId}/layers/${layer} {"enabled": true}.`,
    { details: [{ layer }] },
  );
}

/** A layer as the API shows it and as its audit rows record it. */
export function projectLayerJson(projectId: string, state: ProjectLayerState) {
  return {
    object: "project_layer" as const,
    projectId,
    layer: state.layer,
    enabled: state.enabled,
    settings: state.settings,
    updatedAt: state.updatedAt?.toISOString() ?? null,
  };
}

/**
 * Switches a layer on or off (and replaces its settings when given), as an upsert: the same PUT twice
 * leaves the row as the first left it, so it is idempotent without a key. Runs in the caller's tenant
 * transaction; the row is locked, so two switches of one layer apply one after the other.
 */
export async function putProjectLayer(
  db: Db,
  orgId: string,
  projectId: string,
  layer: ProjectLayer,
  input: { enabled: boolean; settings?: Record<string, unknown> | undefined },
  now: Date,
): Promise<{ before: ProjectLayerState; after: ProjectLayerState }> {
  const current = await db
    .selectFrom("project_layers")
    .select(["enabled", "settings", "updated_at"])
    .where("project_id", "=", projectId)
    .where("layer", "=", layer)
    .forUpdate()
    .executeTakeFirst();
  const before: ProjectLayerState = current
    ? {
        layer,
        enabled: current.enabled,
        settings: current.settings as Record<string, unknown>,
        updatedAt: current.updated_at,
      }
    : { layer, enabled: LAYER_DEFAULTS[layer], settings: {}, updatedAt: null };
  const settings = input.settings ?? before.settings;
  const unchanged =
    current !== undefined &&
    before.enabled === input.enabled &&
    JSON.stringify(before.settings) === JSON.stringify(settings);
  if (unchanged) return { before, after: before };
  const row = await db
    .insertInto("project_layers")
    .values({
      org_id: orgId,
      project_id: projectId,
      layer,
      enabled: input.enabled,
      settings: JSON.stringify(settings),
      created_at: now,
      updated_at: now,
    })
    .onConflict((oc) =>
      oc.columns(["project_id", "layer"]).doUpdateSet({
        enabled: input.enabled,
        settings: JSON.stringify(settings),
        updated_at: now,
      }),
    )
    .returning(["enabled", "settings", "updated_at"])
    .executeTakeFirstOrThrow();
  return {
    before,
    after: {
      layer,
      enabled: row.enabled,
      settings: row.settings as Record<string, unknown>,
      updatedAt: row.updated_at,
    },
  };
}
