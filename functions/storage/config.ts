import { z } from "zod";
import { createS3Store, type ObjectStore } from "./objectStore";

// One S3-API account for every bucket a Worker uses (R2 in production: one API token scoped to the
// buckets; locally the s3rver that `npm run dev` and the tests start). Each Worker validates these with its
// other vars; without S3_ENDPOINT, storage is off and the jobs that need it say so.
export const storageVarsSchema = z.object({
  S3_ENDPOINT: z.url().optional(),
  S3_REGION: z.string().min(1).default("auto"),
  S3_ACCESS_KEY_ID: z.string().min(1).optional(),
  S3_SECRET_ACCESS_KEY: z.string().min(1).optional(),
});
export type StorageVars = z.infer<typeof storageVarsSchema>;

/** A store for `bucket`, or undefined when no endpoint is configured. Half a configuration is an error. */
export function objectStoreFor(vars: StorageVars, bucket: string): ObjectStore | undefined {
  if (!vars.S3_ENDPOINT) return undefined;
  if (!vars.S3_ACCESS_KEY_ID || !vars.S3_SECRET_ACCESS_KEY) {
    throw new Error("S3_ENDPOINT is set but S3_ACCESS_KEY_ID / S3_SECRET_ACCESS_KEY are not");
  }
  return createS3Store({
    endpoint: vars.S3_ENDPOINT,
    bucket,
    region: vars.S3_REGION,
    accessKeyId: vars.S3_ACCESS_KEY_ID,
    secretAccessKey: vars.S3_SECRET_ACCESS_KEY,
  });
}
