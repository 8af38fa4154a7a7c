import { DeleteObjectCommand, PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import type { StorageTarget } from "./store";

// The check of a storage config: write a small object into the partner's bucket under the config's prefix,
// then delete it, with the stored credentials — what content generation will do, minus the media. Runs
// outside any transaction (the caller's mutationWithCall). Failures are answers with a stable code, never
// the SDK's message: a provider's error text can quote request details, and the answer must hold no secret.

export const CHECK_ERROR_CODES = [
  /** The endpoint refused the access key id or the signature (wrong key id or secret, expired key). */
  "credentials_rejected",
  /** The credentials were accepted but lack permission to write (or delete) under the prefix. */
  "access_denied",
  /** The endpoint answered that the bucket does not exist. */
  "bucket_not_found",
  /** No answer: connection refused, DNS failure, TLS failure, or no answer within the timeout. */
  "endpoint_unreachable",
  /** Any other answer (its HTTP status and S3 error name are in the answer). */
  "unexpected_response",
] as const;
export type CheckErrorCode = (typeof CHECK_ERROR_CODES)[number];

export interface ProbeResult {
  status: "ok" | "failed";
  /** Which call failed; null when both worked. */
  step: "put" | "delete" | null;
  error: {
    code: CheckErrorCode;
    /** The S3 error name (e.g. NoSuchBucket), when the endpoint sent one; letters only. */
    providerCode: string | null;
    httpStatus: number | null;
  } | null;
}

/** The probe object's key: under the config's prefix, recognisable, unique per check. */
export function probeKey(prefix: string, id: string): string {
  return `${prefix}layers-storage-check/${id}.txt`;
}

interface SdkError {
  name?: unknown;
  Code?: unknown;
  $metadata?: { httpStatusCode?: unknown };
}

export function classifyS3Error(error: unknown): NonNullable<ProbeResult["error"]> {
  const e = (typeof error === "object" && error !== null ? error : {}) as SdkError;
  const httpStatus = typeof e.$metadata?.httpStatusCode === "number" ? e.$metadata.httpStatusCode : null;
  const rawName = typeof e.Code === "string" ? e.Code : typeof e.name === "string" ? e.name : "";
  // Only a plain error name passes; anything else (a message, a URL) is dropped.
  const providerCode = /^[A-Za-z]{1,64}$/.test(rawName) && httpStatus !== null ? rawName : null;
  if (httpStatus === null) return { code: "endpoint_unreachable", providerCode: null, httpStatus: null };
  const code: CheckErrorCode = [
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "ExpiredToken",
    "InvalidToken",
  ].includes(rawName)
    ? "credentials_rejected"
    : rawName === "NoSuchBucket"
      ? "bucket_not_found"
      : rawName === "AccessDenied" || httpStatus === 403
        ? "access_denied"
        : httpStatus === 401
          ? "credentials_rejected"
          : "unexpected_response";
  return { code, providerCode, httpStatus };
}

/**
 * Writes and deletes one probe object. `timeoutMs` bounds each call (one attempt each: a check should answer
 * promptly, and the partner can run it again).
 */
export async function probeStorage(
  target: StorageTarget,
  options: { timeoutMs: number; probeId: string; now: Date },
): Promise<ProbeResult> {
  const client = new S3Client({
    endpoint: target.endpoint,
    region: target.region,
    forcePathStyle: target.forcePathStyle,
    credentials: { accessKeyId: target.accessKeyId, secretAccessKey: target.secretAccessKey },
    requestChecksumCalculation: "WHEN_REQUIRED",
    responseChecksumValidation: "WHEN_REQUIRED",
    maxAttempts: 1,
  });
  const Key = probeKey(target.prefix, options.probeId);
  const body = new TextEncoder().encode(
    `Layers storage check ${options.probeId} at ${options.now.toISOString()}; safe to delete.\n`,
  );
  const step = async (name: "put" | "delete", run: (signal: AbortSignal) => Promise<unknown>) => {
    try {
      await run(AbortSignal.timeout(options.timeoutMs));
      return null;
    } catch (error) {
      return { status: "failed" as const, step: name, error: classifyS3Error(error) };
    }
  };
  try {
    const put = await step("put", (abortSignal) =>
      client.send(
        new PutObjectCommand({ Bucket: target.bucket, Key, Body: body, ContentType: "text/plain" }),
        { abortSignal },
      ),
    );
    if (put) return put;
    const deleted = await step("delete", (abortSignal) =>
      client.send(new DeleteObjectCommand({ Bucket: target.bucket, Key }), { abortSignal }),
    );
    if (deleted) return deleted;
    return { status: "ok", step: null, error: null };
  } finally {
    client.destroy();
  }
}
