import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import S3rver from "s3rver";
import { createS3Store, type ObjectStore } from "../../functions/storage/objectStore";

export interface LocalS3 {
  endpoint: string;
  bucket: string;
  port: number;
  /** The bindings the Cron Worker needs to reach this server. */
  cronVars: Record<string, string>;
  /** A client for assertions and setup, the same code the Worker uses. */
  storage: ObjectStore;
  /** Stops the server, keeping its files (a storage outage); `start()` brings it back on the same port. */
  stop(): Promise<void>;
  start(): Promise<void>;
  /** Stops the server and removes its files. */
  dispose(): Promise<void>;
}

// s3rver accepts any credentials; these only have to be well-formed for the SDK to sign requests.
const ACCESS_KEY_ID = "S3RVER";
const SECRET_ACCESS_KEY = "S3RVER";

/** A real S3-API server (s3rver) on a free local port, files in a fresh temp directory, one bucket. */
export async function startLocalS3(bucket = "layers-audit-archive"): Promise<LocalS3> {
  const directory = await mkdtemp(path.join(tmpdir(), "layers-s3-"));
  const make = (port: number) =>
    new S3rver({
      address: "127.0.0.1",
      port,
      silent: true,
      directory,
      configureBuckets: [{ name: bucket, configs: [] }],
    });
  let server: S3rver | undefined = make(0);
  const { port } = await server.run();
  const endpoint = `http://127.0.0.1:${port}`;
  return {
    endpoint,
    bucket,
    port,
    cronVars: {
      ARCHIVE_S3_ENDPOINT: endpoint,
      ARCHIVE_S3_BUCKET: bucket,
      ARCHIVE_S3_REGION: "us-east-1",
      ARCHIVE_S3_ACCESS_KEY_ID: ACCESS_KEY_ID,
      ARCHIVE_S3_SECRET_ACCESS_KEY: SECRET_ACCESS_KEY,
    },
    storage: createS3Store({
      endpoint,
      bucket,
      region: "us-east-1",
      accessKeyId: ACCESS_KEY_ID,
      secretAccessKey: SECRET_ACCESS_KEY,
    }),
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
