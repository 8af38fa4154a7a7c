import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  NoSuchKey,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
} from "@aws-sdk/client-s3";
import { getSignedUrl } from "@aws-sdk/s3-request-presigner";

/**
 * Object storage as every job sees it (the cold audit archive, dead letters): just enough of the S3 API, so
 * tests and `npm run dev` reach a real S3-compatible server and production reaches R2.
 */
export interface ObjectStore {
  put(key: string, body: Uint8Array, contentType: string): Promise<void>;
  /** The object's bytes, or undefined when there is no such key. */
  get(key: string): Promise<Uint8Array | undefined>;
  /**
   * One page of keys under `prefix`; with a delimiter, the common prefixes one level down too. `after` is
   * the previous page's `next` (an opaque continuation token); `startAfter` is a key: the listing starts
   * after it (a cursor a job can store and resume from).
   */
  list(
    prefix: string,
    options?: { delimiter?: string; after?: string; startAfter?: string },
  ): Promise<{ keys: string[]; prefixes: string[]; next?: string }>;
  delete(key: string): Promise<void>;
  /**
   * Deletes up to 1,000 keys in one request (S3 DeleteObjects, which R2 supports); a key that is not there
   * counts as deleted. Throws when any key could not be deleted.
   */
  deleteMany(keys: readonly string[]): Promise<void>;
  /** The object's size and type, or undefined when there is no such key. */
  head(key: string): Promise<{ size: number; contentType: string | undefined } | undefined>;
  /**
   * A presigned GET URL (SigV4 query authentication) valid for `expiresInSeconds` (at most 7 days, S3's
   * limit): a partner downloads without an API key, and the URL stops working when it expires.
   * `downloadName` sets Content-Disposition on the answer.
   */
  signedGetUrl(key: string, expiresInSeconds: number, options?: { downloadName?: string }): Promise<string>;
  /**
   * S3 multipart upload, for objects assembled piece by piece without holding them in memory (the org
   * export): every part but the last must be at least MIN_MULTIPART_PART_BYTES (S3's and R2's rule).
   */
  startMultipart(key: string, contentType: string): Promise<string>;
  /** Uploads part `partNumber` (1…10000) of an upload; returns its ETag for completeMultipart. */
  uploadPart(key: string, uploadId: string, partNumber: number, body: Uint8Array): Promise<string>;
  completeMultipart(
    key: string,
    uploadId: string,
    parts: readonly { partNumber: number; etag: string }[],
  ): Promise<void>;
  /** Discards an unfinished upload and its parts; an upload that is already gone is not an error. */
  abortMultipart(key: string, uploadId: string): Promise<void>;
}

/** S3's (and R2's) smallest part of a multipart upload, except the last. */
export const MIN_MULTIPART_PART_BYTES = 5 * 1024 * 1024;

/** SigV4 presigned URLs cannot live longer than a week. */
export const MAX_SIGNED_URL_SECONDS = 7 * 24 * 3600;

export interface S3Config {
  /** R2: https://<account-id>.r2.cloudflarestorage.com; locally the s3rver URL. */
  endpoint: string;
  bucket: string;
  /** "auto" for R2. */
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
  /** Path-style URLs (default true: local servers do not resolve bucket subdomains). A partner's bucket says. */
  forcePathStyle?: boolean;
  /** SDK attempts per call (default 2). */
  maxAttempts?: number;
}

/**
 * The S3 API through @aws-sdk/client-s3 (fetch-based in workerd, with nodejs_compat). Path-style URLs,
 * because local servers do not resolve bucket subdomains (R2 accepts both). Checksums only where the API
 * requires them: R2 and s3rver do not all speak the SDK's newer default (flexible checksums).
 */
export function createS3Store(config: S3Config): ObjectStore {
  const client = new S3Client({
    endpoint: config.endpoint,
    region: config.region,
    forcePathStyle: config.forcePathStyle ?? true,
    credentials: { accessKeyId: config.accessKeyId, secretAccessKey: config.secretAccessKey },
    requestChecksumCalculation: "WHEN_REQUIRED",
    responseChecksumValidation: "WHEN_REQUIRED",
    // A storage outage should fail the job quickly; the next run retries anyway.
    maxAttempts: config.maxAttempts ?? 2,
  });
  const Bucket = config.bucket;
  return {
    async put(key, body, contentType) {
      await client.send(new PutObjectCommand({ Bucket, Key: key, Body: body, ContentType: contentType }));
    },
    async get(key) {
      try {
        const object = await client.send(new GetObjectCommand({ Bucket, Key: key }));
        return object.Body ? await object.Body.transformToByteArray() : new Uint8Array();
      } catch (error) {
        if (error instanceof NoSuchKey || (error as { name?: string }).name === "NoSuchKey") return undefined;
        throw error;
      }
    },
    async list(prefix, options = {}) {
      const page = await client.send(
        new ListObjectsV2Command({
          Bucket,
          Prefix: prefix,
          Delimiter: options.delimiter,
          ContinuationToken: options.after,
          StartAfter: options.startAfter,
          MaxKeys: 1000,
        }),
      );
      return {
        keys: (page.Contents ?? []).flatMap((o) => (o.Key ? [o.Key] : [])),
        prefixes: (page.CommonPrefixes ?? []).flatMap((p) => (p.Prefix ? [p.Prefix] : [])),
        ...(page.IsTruncated && page.NextContinuationToken ? { next: page.NextContinuationToken } : {}),
      };
    },
    async delete(key) {
      await client.send(new DeleteObjectCommand({ Bucket, Key: key }));
    },
    async deleteMany(keys) {
      if (keys.length === 0) return;
      if (keys.length > 1_000) throw new Error("deleteMany: at most 1,000 keys per request");
      const answer = await client.send(
        new DeleteObjectsCommand({ Bucket, Delete: { Objects: keys.map((Key) => ({ Key })), Quiet: true } }),
      );
      const failed = answer.Errors ?? [];
      if (failed.length > 0) {
        // The error code only: a message may quote the key.
        const error = new Error(`deleteMany: ${failed.length} of ${keys.length} keys not deleted`);
        (error as { code?: string }).code = failed[0]?.Code ?? "DeleteObjectsFailed";
        throw error;
      }
    },
    async head(key) {
      try {
        const object = await client.send(new HeadObjectCommand({ Bucket, Key: key }));
        return { size: object.ContentLength ?? 0, contentType: object.ContentType };
      } catch (error) {
        const name = (error as { name?: string }).name;
        if (name === "NotFound" || name === "NoSuchKey") return undefined;
        throw error;
      }
    },
    async signedGetUrl(key, expiresInSeconds, options = {}) {
      if (!(expiresInSeconds >= 1 && expiresInSeconds <= MAX_SIGNED_URL_SECONDS)) {
        throw new RangeError(
          `A signed URL lives 1 s to ${MAX_SIGNED_URL_SECONDS} s, not ${expiresInSeconds}`,
        );
      }
      const disposition = options.downloadName
        ? `attachment; filename="${options.downloadName.replace(/[^A-Za-z0-9._-]/g, "_")}"`
        : undefined;
      return getSignedUrl(
        client,
        new GetObjectCommand({ Bucket, Key: key, ResponseContentDisposition: disposition }),
        { expiresIn: expiresInSeconds },
      );
    },
    async startMultipart(key, contentType) {
      const upload = await client.send(
        new CreateMultipartUploadCommand({ Bucket, Key: key, ContentType: contentType }),
      );
      if (!upload.UploadId) throw new Error(`no upload id for ${key}`);
      return upload.UploadId;
    },
    async uploadPart(key, uploadId, partNumber, body) {
      const part = await client.send(
        new UploadPartCommand({ Bucket, Key: key, UploadId: uploadId, PartNumber: partNumber, Body: body }),
      );
      if (!part.ETag) throw new Error(`no ETag for part ${partNumber} of ${key}`);
      return part.ETag;
    },
    async completeMultipart(key, uploadId, parts) {
      await client.send(
        new CompleteMultipartUploadCommand({
          Bucket,
          Key: key,
          UploadId: uploadId,
          MultipartUpload: { Parts: parts.map((p) => ({ PartNumber: p.partNumber, ETag: p.etag })) },
        }),
      );
    },
    async abortMultipart(key, uploadId) {
      try {
        await client.send(new AbortMultipartUploadCommand({ Bucket, Key: key, UploadId: uploadId }));
      } catch (error) {
        if ((error as { name?: string }).name !== "NoSuchUpload") throw error;
      }
    },
  };
}
