import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { createS3Store, type ObjectStore } from "../../functions/storage/objectStore";
import { createLocalS3rver } from "../../scripts/local/s3rver";

export interface LocalS3 {
  endpoint: string;
  port: number;
  /** S3_* vars for a Worker to reach this server (the buckets are named separately). */
  vars: Record<string, string>;
  /** The Cron Worker's vars for the audit archive: the S3_* vars and ARCHIVE_BUCKET. */
  cronVars: Record<string, string>;
  /** The audit-archive bucket, through the same client code the Workers use. */
  storage: ObjectStore;
  /** The dead-letter bucket. */
  deadLetters: ObjectStore;
  /** The generated-media bucket. */
  media: ObjectStore;
  /** The org-export bucket. */
  exports: ObjectStore;
  /** Stops the server, keeping its files (a storage outage); `start()` brings it back on the same port. */
  stop(): Promise<void>;
  start(): Promise<void>;
  /** Stops the server and removes its files. */
  dispose(): Promise<void>;
}

export const ARCHIVE_BUCKET = "layers-audit-archive";
export const DEAD_LETTER_BUCKET = "layers-dead-letters";
/** Generated media of `storage: true` content jobs (issue 14). */
export const MEDIA_BUCKET = "layers-media";
/** Org export archives (issue 15). */
export const EXPORT_BUCKET = "layers-exports";
/** Every bucket the system owns: a deletion must reach each (the org-deletion coverage test reads this). */
export const SYSTEM_BUCKETS = [ARCHIVE_BUCKET, DEAD_LETTER_BUCKET, MEDIA_BUCKET, EXPORT_BUCKET] as const;

// s3rver accepts any credentials; these only have to be well-formed for the SDK to sign requests.
const ACCESS_KEY_ID = "S3RVER";
const SECRET_ACCESS_KEY = "S3RVER";

/**
 * A real S3-API server (s3rver) on a free local port, files in a fresh temp directory, both buckets (and
 * `extraBuckets`: a partner's own bucket, for storage-config tests). s3rver checks a SigV4 request's access
 * key id (only S3RVER is known) but not its signature, so any secret access key is accepted with it.
 */
export async function startLocalS3(options: { extraBuckets?: string[] } = {}): Promise<LocalS3> {
  const directory = await mkdtemp(path.join(tmpdir(), "layers-s3-"));
  const make = (port: number) =>
    createLocalS3rver({
      address: "127.0.0.1",
      port,
      silent: true,
      directory,
      configureBuckets: [...SYSTEM_BUCKETS, ...(options.extraBuckets ?? [])].map((name) => ({
        name,
        configs: [],
      })),
    });
  let server: ReturnType<typeof createLocalS3rver> | undefined = make(0);
  const { port } = await server.run();
  const endpoint = `http://127.0.0.1:${port}`;
  const vars = {
    S3_ENDPOINT: endpoint,
    S3_REGION: "us-east-1",
    S3_ACCESS_KEY_ID: ACCESS_KEY_ID,
    S3_SECRET_ACCESS_KEY: SECRET_ACCESS_KEY,
  };
  const store = (bucket: string) =>
    createS3Store({
      endpoint,
      bucket,
      region: "us-east-1",
      accessKeyId: ACCESS_KEY_ID,
      secretAccessKey: SECRET_ACCESS_KEY,
    });
  return {
    endpoint,
    port,
    vars,
    cronVars: { ...vars, ARCHIVE_BUCKET },
    storage: store(ARCHIVE_BUCKET),
    deadLetters: store(DEAD_LETTER_BUCKET),
    media: store(MEDIA_BUCKET),
    exports: store(EXPORT_BUCKET),
    async stop() {
      await server?.close();
      server = undefined;
    },
    async start() {
      if (server) return;
      server = make(port);
      await server.run();
    },
    async dispose() {
      await server?.close();
      server = undefined;
      await rm(directory, { recursive: true, force: true });
    },
  };
}
