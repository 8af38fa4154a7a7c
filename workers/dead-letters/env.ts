import { z } from "zod";
import { storageVarsSchema } from "../../functions/storage/config";

export interface DeadLetterBindings {
  DATABASE_URL: string;
  NEON_WS_PROXY?: string;
  DEAD_LETTER_BUCKET?: string;
  S3_ENDPOINT?: string;
  S3_REGION?: string;
  S3_ACCESS_KEY_ID?: string;
  S3_SECRET_ACCESS_KEY?: string;
  RELAY_RECORD_ATTEMPTS?: string;
}

export const deadLetterVarsSchema = storageVarsSchema.extend({
  DATABASE_URL: z.string().min(1),
  NEON_WS_PROXY: z.string().min(1).optional(),
  // Without storage there is nowhere durable to put a dead letter: a deploy without it fails loudly.
  S3_ENDPOINT: z.url(),
  DEAD_LETTER_BUCKET: z.string().min(3).max(63).default("layers-dead-letters"),
  RELAY_RECORD_ATTEMPTS: z.coerce.number().int().min(1).max(99).default(12),
});
export type DeadLetterVars = z.infer<typeof deadLetterVarsSchema>;
