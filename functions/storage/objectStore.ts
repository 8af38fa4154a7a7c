import {
  DeleteObjectCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  NoSuchKey,
  PutObjectCommand,
  S3Client,
} from "@aws-sdk/client-s3";

/**
 * Object storage as every job sees it (the cold audit archive, dead letters): just enough of the S3 API, so
 * tests and `npm run dev` reach a real S3-compatible server and production reaches R2.
 */
export interface ObjectStore {
  put(key: string, body: Uint8Array, contentType: string): Promise<void>;
  /** The object's bytes, or undefined when there is no such key. */
  get(key: string): Promise<Uint8Array | undefined>;
  /** One page of keys under `prefix`; with a delimiter, the common prefixes one level down too. */
  list(
    prefix: string,
    options?: { delimiter?: string; after?: string },
  ): Promise<{ keys: string[]; prefixes: string[]; next?: string }>;
  delete(key: string): Promise<void>;
}

export interface S3Config {
  /** R2: https://<account-id>.r2.cloudflarestorage.com; locally the s3rver URL. */
  endpoint: string;
  bucket: string;
  /** "auto" for R2. */
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
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
    forcePathStyle: true,
    credentials: { accessKeyId: config.accessKeyId, secretAccessKey: config.secretAccessKey },
    requestChecksumCalculation: "WHEN_REQUIRED",
    responseChecksumValidation: "WHEN_REQUIRED",
    // A storage outage should fail the job quickly; the next run retries anyway.
    maxAttempts: 2,
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
  };
}
