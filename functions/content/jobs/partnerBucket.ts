import { PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { classifyS3Error } from "../../storageConfigs/probe";
import type { StorageTarget } from "../../storageConfigs/store";
import { JobError } from "./errors";

// Writing a job's media into a partner's own bucket (`storage: { id }`), with the config's decrypted
// credentials, in memory for this one call. One attempt per call: the workflow's step retries are the
// retry schedule. A failure becomes a stable code, never the endpoint's message.

export type PartnerPut = (
  target: StorageTarget,
  key: string,
  body: Uint8Array,
  contentType: string,
  timeoutMs: number,
) => Promise<void>;

export const putToPartnerBucket: PartnerPut = async (target, key, body, contentType, timeoutMs) => {
  const client = new S3Client({
    endpoint: target.endpoint,
    region: target.region,
    forcePathStyle: target.forcePathStyle,
    credentials: { accessKeyId: target.accessKeyId, secretAccessKey: target.secretAccessKey },
    requestChecksumCalculation: "WHEN_REQUIRED",
    responseChecksumValidation: "WHEN_REQUIRED",
    maxAttempts: 1,
  });
  try {
    await client.send(
      new PutObjectCommand({ Bucket: target.bucket, Key: key, Body: body, ContentType: contentType }),
      { abortSignal: AbortSignal.timeout(timeoutMs) },
    );
  } catch (error) {
    const { code, httpStatus } = classifyS3Error(error);
    // Reaching the bucket can work next time; refused credentials, permissions or a missing bucket cannot
    // until the partner changes something.
    if (code === "endpoint_unreachable" || code === "unexpected_response") {
      throw new JobError(
        "storage_unavailable",
        `The storage config's bucket did not take the object (${code}).`,
      );
    }
    throw new JobError(
      `storage_${code}`,
      `The storage config's bucket refused the object (${code}${httpStatus ? `, HTTP ${httpStatus}` : ""}).`,
      false,
    );
  } finally {
    client.destroy();
  }
};
