// The local S3 server (scripts/local/s3rver.ts) in its own process for (l): s3rver does its file work on
// its event loop, and in the bench's own process it would stall the ingest the bench measures meanwhile.
// Prints its port on stdout; removes its files on SIGTERM.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { createLocalS3rver } from "../../scripts/local/s3rver";
import { MEDIA_BUCKET } from "../support/s3";

const directory = await mkdtemp(path.join(tmpdir(), "layers-bench-s3-"));
const server = createLocalS3rver({
  address: "127.0.0.1",
  port: 0,
  silent: true,
  directory,
  configureBuckets: [{ name: MEDIA_BUCKET, configs: [] }],
});
const { port } = await server.run();
process.stdout.write(`${port}\n`);
process.on("SIGTERM", () => {
  void server
    .close()
    .then(() => rm(directory, { recursive: true, force: true }))
    .finally(() => process.exit(0));
});
