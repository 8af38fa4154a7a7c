import { sql } from "kysely";
import type { Db } from "../../shared/db";
import type { ObjectStore } from "../storage/objectStore";
import { deleteInChunks } from "./deleteInChunks";
import { daysBefore, RETENTION, type RetentionLimits } from "./policy";

// Retention of generated content (issue 14, the storage-modes seed): a container of an archived project
// expires at archived_at + 90 days (set by the archive verb, or by the insert trigger for a project already
// archived). Expired cloud containers lose their object in our media bucket first, then their row; an
// own-bucket container loses its row only (the partner's bucket is theirs to manage). A failed object
// delete leaves the row, so the next run tries again. Job records (metadata only) go 400 days after
// creation.

export interface ContentRetentionCounts {
  content_containers: number;
  content_objects: number;
  content_object_failures: number;
  content_jobs: number;
}

interface Expired {
  id: string;
  storage_mode: "cloud" | "own";
  object_key: string;
  expires_at: Date;
}

/**
 * One pass, bounded by the row budget per class. Without a media store (no S3_ENDPOINT) cloud containers
 * stay: their objects cannot be deleted, and a row never goes before its object.
 */
export async function purgeExpiredContent(
  db: Db,
  media: ObjectStore | undefined,
  now: Date,
  limits: RetentionLimits,
  log?: (message: string, fields: Record<string, unknown>) => void,
): Promise<{ counts: ContentRetentionCounts; more: boolean }> {
  const counts: ContentRetentionCounts = {
    content_containers: 0,
    content_objects: 0,
    content_object_failures: 0,
    content_jobs: 0,
  };
  let more = false;
  // Rows whose object could not be deleted this run: skipped by later chunks of the same run.
  const failed: string[] = [];
  let storageDown = false;
  for (;;) {
    const left = limits.rowBudget - counts.content_containers;
    if (left <= 0) {
      more = true;
      break;
    }
    const size = Math.min(limits.chunkSize, left);
    let query = db
      .selectFrom("content_containers")
      .select(["id", "storage_mode", "object_key", "expires_at"])
      .where("expires_at", "<", now)
      .orderBy("expires_at")
      .orderBy("id")
      .limit(size);
    if (failed.length > 0) query = query.where("id", "not in", failed);
    // Without a working store only own-bucket rows can go (a row never goes before its object).
    const cloudPossible = media !== undefined && !storageDown;
    if (!cloudPossible) query = query.where("storage_mode", "=", "own");
    const chunk = (await query.execute()) as Expired[];
    if (chunk.length === 0) break;
    const deletable: string[] = [];
    for (const row of chunk) {
      if (row.storage_mode === "own") {
        deletable.push(row.id);
      } else if (media && !storageDown) {
        try {
          await media.delete(row.object_key);
          counts.content_objects += 1;
          deletable.push(row.id);
        } catch (error) {
          // The store is down (or refuses): keep the row, stop calling it this run, go on with own rows.
          counts.content_object_failures += 1;
          storageDown = true;
          more = true;
          log?.("content retention: object delete failed; the container stays for the next run", {
            containerId: row.id,
            error,
          });
        }
      }
      if (!deletable.includes(row.id)) failed.push(row.id);
    }
    if (deletable.length > 0) {
      // The predicate again: a project unarchived meanwhile (expires_at cleared) keeps its container.
      const gone = await db
        .deleteFrom("content_containers")
        .where("id", "in", deletable)
        .where("expires_at", "<", now)
        .executeTakeFirst();
      counts.content_containers += Number(gone.numDeletedRows);
    }
    // A short chunk was the last one, unless the store failed in it (then own rows may remain after it).
    if (chunk.length < size && cloudPossible === (media !== undefined && !storageDown)) break;
  }
  const jobs = await deleteInChunks(
    db,
    {
      table: "content_jobs",
      where: sql`created_at < ${daysBefore(now, RETENTION.contentJobDays)}`,
      orderBy: "created_at",
    },
    limits.chunkSize,
    limits.rowBudget,
  );
  counts.content_jobs = jobs.deleted;
  return { counts, more: more || jobs.more };
}
