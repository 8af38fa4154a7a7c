import { ApiError } from "../../shared/errors";
import { audit } from "../audit/writeAudit";
import { isCredentialField } from "../content/redact";
import type { VerbContext } from "../context";
import {
  listProjectLayers,
  type ProjectLayer,
  type ProjectLayerState,
  projectLayerJson,
  putProjectLayer,
} from "./layers";
import { changeableProject, visibleProject } from "./verbs";

// The layers API (GET/PUT /v1/projects/:projectId/layers): the verbs over functions/projects/layers.ts.

/** Settings are the partner's labels for a layer: a few scalars, never a credential. */
export const MAX_LAYER_SETTINGS = 20;

export async function listVisibleProjectLayers(
  ctx: VerbContext,
  projectId: string,
): Promise<ProjectLayerState[]> {
  await visibleProject(ctx, projectId);
  return listProjectLayers(ctx.db, projectId);
}

/**
 * Switches a layer (audited `project_layer.updated` when something changed). A PUT that changes nothing
 * writes no audit row and answers the layer as it is. Settings whose name reads like a credential are
 * refused: a layer's settings are shown in every answer and audit row.
 */
export async function setProjectLayer(
  ctx: VerbContext,
  projectId: string,
  layer: ProjectLayer,
  input: { enabled: boolean; settings?: Record<string, unknown> | undefined },
): Promise<ProjectLayerState> {
  await changeableProject(ctx, projectId);
  const credential = Object.keys(input.settings ?? {}).find(isCredentialField);
  if (credential !== undefined) {
    throw new ApiError("invalid_request", "Layer settings cannot hold credentials.", {
      details: [{ field: `settings.${credential}`, message: "A credential field name is not allowed." }],
    });
  }
  const { before, after } = await putProjectLayer(ctx.db, ctx.orgId, projectId, layer, input, ctx.now);
  if (before.updatedAt?.getTime() !== after.updatedAt?.getTime()) {
    await audit(
      ctx,
      "project_layer.updated",
      { type: "project_layer", id: `${projectId}/${layer}` },
      { before: projectLayerJson(projectId, before), after: projectLayerJson(projectId, after) },
    );
  }
  return after;
}
