import { z } from "zod";
import type { Keyring } from "../../../shared/destinations";
import { type EncryptedToken, openWithKeyring, sealWithKeyring } from "../../destinations/crypto";
import { PROMPT_INPUT_LIMITS } from "../prompt";
import { CONTENT_KINDS, STORYBOARD_FRAMES } from "../providers/types";

// What a partner asks a content job for — brief, product info, references, frames — as the API accepts it
// and as the workflow reads it back. While the job is queued or running it is kept only sealed
// (content_jobs.request_ciphertext: AES-256-GCM under the DESTINATION_KEYS ring, bound to the org and the
// job id, so a ciphertext copied to another job does not open); the statement that finishes the job clears
// it, and a check constraint (migration 0011) refuses a finished job that still holds it.

const L = PROMPT_INPUT_LIMITS;
const text = (max: number) => z.string().trim().min(1).max(max);

/** At most this many earlier containers of the same project may be referenced. */
export const MAX_REFERENCES = L.earlierCreative;

export const briefSchema = z
  .object({
    text: text(L.brief),
    tone: text(L.tone).optional(),
    audience: text(L.audience).optional(),
    callToAction: text(L.callToAction).optional(),
  })
  .strict();

export const productSchema = z
  .object({
    name: text(L.productName).optional(),
    description: text(L.productDescription).optional(),
    features: z.array(text(L.feature)).max(L.features).optional(),
    url: z.url().max(2_000).optional(),
  })
  .strict();

/** The sealed part of a job: everything the prompt is built from, nothing about storage. */
export const jobRequestSchema = z
  .object({
    kind: z.enum(CONTENT_KINDS),
    brief: briefSchema,
    product: productSchema.optional(),
    references: z.array(z.string().min(1).max(64)).max(MAX_REFERENCES).optional(),
    frames: z.number().int().min(STORYBOARD_FRAMES.min).max(STORYBOARD_FRAMES.max).optional(),
  })
  .strict();

export type JobRequest = z.infer<typeof jobRequestSchema>;

const AAD_VERSION = "layers-content-job-request:v1";
const aad = (orgId: string, jobId: string) => `${AAD_VERSION}\n${orgId}\n${jobId}`;

export function sealJobRequest(
  keyring: Keyring,
  request: JobRequest,
  binding: { orgId: string; jobId: string },
): Promise<EncryptedToken> {
  return sealWithKeyring(keyring, JSON.stringify(request), aad(binding.orgId, binding.jobId));
}

export async function openJobRequest(
  keyring: Keyring,
  sealed: EncryptedToken,
  binding: { orgId: string; jobId: string },
): Promise<JobRequest> {
  const plain = await openWithKeyring(
    keyring,
    sealed,
    aad(binding.orgId, binding.jobId),
    `Request of content job ${binding.jobId}`,
  );
  return jobRequestSchema.parse(JSON.parse(plain));
}
