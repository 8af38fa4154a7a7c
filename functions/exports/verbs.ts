import { newestFirstPage } from "../../shared/db/newestFirstPage";
import { ApiError } from "../../shared/errors";
import { newId } from "../../shared/ids";
import { audit } from "../audit/writeAudit";
import { found, type VerbContext } from "../context";
import type { ObjectStore } from "../storage/objectStore";
import { EXPORT_URL_SECONDS } from "./lifetimes";

/** At most this many projects may be named in one export. */
export const MAX_EXPORT_PROJECTS = 100;

export interface OrgExportView {
  id: string;
  object: "org_export";
  status: "queued" | "running" | "succeeded" | "failed" | "expired";
  projects: string[] | null;
  includeEvents: boolean;
  counts: Record<string, number>;
  sizeBytes: number | null;
  sha256: string | null;
  errorCode: string | null;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  expiresAt: string | null;
  download: { url: string; expiresAt: string } | null;
}

const COLUMNS = [
  "id",
  "status",
  "project_ids",
  "include_events",
  "counts",
  "object_key",
  "size_bytes",
  "sha256",
  "error_code",
  "created_at",
  "started_at",
  "finished_at",
  "expires_at",
] as const;

type Row = {
  id: string;
  status: string;
  project_ids: string[] | null;
  include_events: boolean;
  counts: unknown;
  object_key: string | null;
  size_bytes: string | number | null;
  sha256: string | null;
  error_code: string | null;
  created_at: Date;
  started_at: Date | null;
  finished_at: Date | null;
  expires_at: Date | null;
};

/**
 * The API's view of an export. A finished one carries a fresh signed download URL (24 h, never longer than
 * the object lives) when `signer` is given; URLs are made per answer and never stored.
 */
async function view(row: Row, now: Date, signer: ObjectStore | undefined): Promise<OrgExportView> {
  let download: OrgExportView["download"] = null;
  if (row.status === "succeeded" && row.object_key && row.expires_at && signer && row.expires_at > now) {
    const seconds = Math.min(
      EXPORT_URL_SECONDS,
      Math.floor((row.expires_at.getTime() - now.getTime()) / 1000),
    );
    if (seconds >= 1) {
      download = {
        url: await signer.signedGetUrl(row.object_key, seconds, {
          downloadName: `layers-export-${row.id}.tar`,
        }),
        expiresAt: new Date(now.getTime() + seconds * 1000).toISOString(),
      };
    }
  }
  return {
    id: row.id,
    object: "org_export",
    status: row.status as OrgExportView["status"],
    projects: row.project_ids,
    includeEvents: row.include_events,
    counts: (row.counts ?? {}) as Record<string, number>,
    sizeBytes: row.size_bytes === null ? null : Number(row.size_bytes),
    sha256: row.sha256,
    errorCode: row.error_code,
    createdAt: row.created_at.toISOString(),
    startedAt: row.started_at?.toISOString() ?? null,
    finishedAt: row.finished_at?.toISOString() ?? null,
    expiresAt: row.expires_at?.toISOString() ?? null,
    download,
  };
}

/**
 * Opens an export job (the Cron Worker's exporter runs it). The named projects must be the org's (else 404,
 * as for any project of another org); one export at a time per org (409 conflict while one is queued or
 * running). Audited as org_export.created.
 */
export async function createOrgExport(
  ctx: VerbContext,
  input: { projects?: string[] | undefined; includeEvents: boolean },
): Promise<OrgExportView> {
  const projects = input.projects ? [...new Set(input.projects)] : null;
  if (projects) {
    const known = await ctx.db.selectFrom("projects").select("id").where("id", "in", projects).execute();
    const ids = new Set(known.map((p) => p.id));
    const missing = projects.find((id) => !ids.has(id));
    if (missing) throw new ApiError("not_found", `No project ${missing}.`);
  }
  const open = await ctx.db
    .selectFrom("org_exports")
    .select("id")
    .where("status", "in", ["queued", "running"])
    .executeTakeFirst();
  if (open) {
    throw new ApiError("conflict", `Export ${open.id} is still in progress; wait for it to finish.`, {
      details: [{ exportId: open.id }],
    });
  }
  const inserted = ctx.db
    .insertInto("org_exports")
    .values({
      id: newId("exp"),
      org_id: ctx.orgId,
      status: "queued",
      project_ids: projects,
      include_events: input.includeEvents,
      requested_by: ctx.actor.id,
      request_id: ctx.requestId,
      created_at: ctx.now,
    })
    .returning(COLUMNS)
    .executeTakeFirstOrThrow();
  const row = await inserted.catch((error: unknown) => {
    // org_exports_one_open: another request opened one between the check above and this insert.
    if ((error as { code?: string }).code === "23505") {
      throw new ApiError("conflict", "An export is already in progress; wait for it to finish.");
    }
    throw error;
  });
  const result = await view(row as Row, ctx.now, undefined);
  await audit(
    ctx,
    "org_export.created",
    { type: "org_export", id: row.id },
    { after: { projects, includeEvents: input.includeEvents } },
  );
  return result;
}

export async function getOrgExport(
  ctx: VerbContext,
  id: string,
  signer: ObjectStore | undefined,
): Promise<OrgExportView> {
  const row = await ctx.db.selectFrom("org_exports").select(COLUMNS).where("id", "=", id).executeTakeFirst();
  return view(found(row, `No export ${id}.`) as Row, ctx.now, signer);
}

export async function listOrgExports(
  ctx: VerbContext,
  page: { limit: number; startingAfter?: string | undefined },
): Promise<{ data: OrgExportView[]; hasMore: boolean }> {
  const { rows, hasMore } = await newestFirstPage(ctx.db.selectFrom("org_exports").select(COLUMNS), {
    table: "org_exports",
    time: "created_at",
    id: "id",
    ...page,
  });
  return { data: await Promise.all(rows.map((r) => view(r as Row, ctx.now, undefined))), hasMore };
}
