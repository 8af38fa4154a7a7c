import { createHash, randomUUID } from "node:crypto";
import type { ObjectStore } from "../../functions/storage/objectStore";
import type { Db } from "../../shared/db";
import { newId } from "../../shared/ids";
import { MEDIA_BUCKET } from "./s3";

// A content container as the content workflow leaves one (its job row and its object), made directly: the
// library tests need containers without running generation. `store` is where the object goes: our media
// bucket for cloud, the partner's bucket for own (then `storageConfigId` and `bucket` name it).

export interface TestContainer {
  id: string;
  jobId: string;
  objectKey: string;
  bytes: Uint8Array;
  sha256: string;
}

export async function insertTestContainer(
  db: Db,
  store: ObjectStore,
  options: {
    orgId: string;
    projectId: string;
    kind?: "copy" | "image" | "reel_storyboard" | "video";
    storageConfigId?: string;
    bucket?: string;
    prefix?: string;
    text?: string;
    createdAt?: Date;
  },
): Promise<TestContainer> {
  const id = newId("ctr");
  const jobId = newId("cjob");
  const own = options.storageConfigId !== undefined;
  const bytes = new TextEncoder().encode(options.text ?? `Generated copy ${randomUUID()}`);
  const sha256 = createHash("sha256").update(bytes).digest("hex");
  const objectKey = own
    ? `${options.prefix ?? ""}layers/${options.projectId}/${id}`
    : `media/${options.orgId}/${options.projectId}/${id}`;
  await store.put(objectKey, bytes, "text/plain");
  const at = options.createdAt ?? new Date();
  await db
    .insertInto("content_jobs")
    .values({
      id: jobId,
      org_id: options.orgId,
      project_id: options.projectId,
      kind: options.kind ?? "copy",
      status: "succeeded",
      storage_mode: own ? "own" : "cloud",
      storage_config_id: options.storageConfigId ?? null,
      async: true,
      provider: "local",
      model: "local-1",
      created_at: at,
      started_at: at,
      finished_at: at,
    })
    .execute();
  await db
    .insertInto("content_containers")
    .values({
      id,
      org_id: options.orgId,
      project_id: options.projectId,
      job_id: jobId,
      kind: options.kind ?? "copy",
      storage_mode: own ? "own" : "cloud",
      storage_config_id: options.storageConfigId ?? null,
      bucket: options.bucket ?? MEDIA_BUCKET,
      object_key: objectKey,
      size_bytes: bytes.length,
      sha256,
      media_type: "text/plain",
      provider: "local",
      model: "local-1",
      created_at: at,
    })
    .execute();
  return { id, jobId, objectKey, bytes, sha256 };
}
