import crypto from "node:crypto";
import S3rver from "s3rver";

type S3rverOptions = ConstructorParameters<typeof S3rver>[0];

interface FilesystemStore {
  deleteObject(bucket: string, key: string): Promise<void>;
}

/**
 * s3rver, the local S3-API server of `npm run dev`, the tests and the bench, with two of its defects
 * worked around (its last release is from 2021; S3 and R2 have neither).
 *
 * 1. A listing longer than one page (1,000 keys) answers a continuation token that s3rver encrypts with
 * single DES, which OpenSSL 3 (Node 17 and later) no longer offers: every such ListObjectsV2 failed with
 * a 500 InternalError, so an org with more than a thousand objects under one prefix could never be
 * listed, exported or erased locally. The token is opaque to clients and only s3rver reads it back, so its DES is swapped for
 * triple DES with the key repeated three times, which is the same cipher (DES-EDE with K1 = K2 = K3 is
 * DES) and which OpenSSL 3 still has. Only the "des" algorithm, which would otherwise throw, is touched.
 * 2. DeleteObjects deletes its keys all at once, and each delete then removes the directories it left
 * empty: two keys of one directory can both find it empty, and the second removal fails (ENOENT), failing
 * the whole request with a 500 (seen on the last batch of a 2,500-key deletion). The object's files are
 * gone by then, so a cleanup that finds its directory gone (or refilled) has nothing left to do.
 */
export function createLocalS3rver(options: S3rverOptions): S3rver {
  allowS3rverContinuationTokens();
  const server = new S3rver(options);
  const store = (server as unknown as { store: FilesystemStore }).store;
  const deleteObject = store.deleteObject.bind(store);
  store.deleteObject = async (bucket, key) => {
    try {
      await deleteObject(bucket, key);
    } catch (error) {
      const code = (error as { code?: string }).code;
      if (code !== "ENOENT" && code !== "ENOTEMPTY") throw error;
    }
  };
  return server;
}

let patched = false;

function allowS3rverContinuationTokens(): void {
  if (patched) return;
  patched = true;
  // s3rver calls crypto.createCipheriv / createDecipheriv on the shared module object at request time.
  type Make = (
    algorithm: string,
    key: crypto.CipherKey,
    iv: crypto.BinaryLike | null,
    ...options: unknown[]
  ) => unknown;
  // Every other algorithm, and any options argument, go through untouched.
  const desAsTripleDes =
    (make: Make): Make =>
    (algorithm, key, iv, ...options) =>
      algorithm === "des"
        ? make("des-ede3-cbc", Buffer.concat([key, key, key] as Uint8Array[]), iv, ...options)
        : make(algorithm, key, iv, ...options);
  crypto.createCipheriv = desAsTripleDes(crypto.createCipheriv as Make) as typeof crypto.createCipheriv;
  crypto.createDecipheriv = desAsTripleDes(crypto.createDecipheriv as Make) as typeof crypto.createDecipheriv;
}
