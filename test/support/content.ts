import { randomUUID } from "node:crypto";
import type { z } from "@hono/zod-openapi";
import { expect } from "vitest";
import type { Db } from "../../shared/db";
import type { ContentJobResultSchema, ContentJobSchema } from "../../workers/api/routes/contentJobs";
import type { Api } from "./api";
import { type ApiTenant, createApiTenant } from "./apiTenant";
import type { Project } from "./apiTypes";
import { rememberSecret } from "./issuedSecrets";
import { type Stack, waitFor } from "./stack";

// Content jobs in tests: an org with a project whose content layer is on, and waiting for a job to end.

/** Switches a project's content layer on through the layers API (the key needs the admin role). */
export async function enableContentLayer(as: Api, projectId: string): Promise<void> {
  const put = await as.put(`/v1/projects/${projectId}/layers/content`, { enabled: true });
  expect(put.status, put.text).toBe(200);
}

export interface ContentOrg {
  tenant: ApiTenant;
  projectId: string;
}

export async function contentOrg(
  stack: Stack,
  as: (secret: string) => Api,
  layer = true,
): Promise<ContentOrg> {
  const tenant = await createApiTenant(stack.db);
  const project = await as(tenant.secret).post<unknown, Project>("/v1/projects", { name: "Content app" });
  expect(project.status, project.text).toBe(201);
  if (layer) await enableContentLayer(as(tenant.secret), project.body.id);
  return { tenant, projectId: project.body.id };
}

/** A webhook endpoint that wants every event (so content_job.* rows are written); its secret remembered. */
export async function anyEventEndpoint(as: Api): Promise<string> {
  const created = await as.post<unknown, { id: string; secret: string }>("/v1/webhook-endpoints", {
    url: `http://127.0.0.1:9/${randomUUID()}`,
  });
  expect(created.status, created.text).toBe(201);
  rememberSecret(created.body.secret);
  return created.body.id;
}

/** Polls the job row until it is succeeded or failed. */
export async function jobEnded(db: Db, jobId: string, timeoutMs = 30_000) {
  return waitFor(async () => {
    const row = await db.selectFrom("content_jobs").selectAll().where("id", "=", jobId).executeTakeFirst();
    return row && (row.status === "succeeded" || row.status === "failed") ? row : undefined;
  }, timeoutMs);
}

export type ContentJob = z.infer<typeof ContentJobSchema>;
export type ContentJobResult = z.infer<typeof ContentJobResultSchema>;
/** A container with its download, as the container routes and the job answers show it. */
export type ContentContainerWithDownload = NonNullable<ContentJobResult["container"]>;
