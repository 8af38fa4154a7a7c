import { sha256Hex } from "../../shared/hash";
import { hashEmail, hashPhone } from "../../shared/pii";

/**
 * Who a data-subject request is about, as a partner names them: a user id, and/or an email or phone
 * (raw, hashed here with exactly the ingest normalization, or already a SHA-256 digest).
 */
export interface SubjectInput {
  userId?: string | undefined;
  email?: string | undefined;
  phone?: string | undefined;
  /**
   * Where a raw phone written without its country code is placed (ISO 3166-1 alpha-2). Without it such a
   * number cannot be placed and is hashed as its digits as sent (see shared/phone.ts readPhone).
   */
  phoneCountry?: string | undefined;
}

/** The subject reduced to what we may keep: digests only, plus the plaintext user id while it is needed. */
export interface Subject {
  userId: string | null;
  userIdSha256: string | null;
  emailSha256: string | null;
  phoneSha256: string | null;
  /** One value per distinct subject: at most one open deletion request per subject and project. */
  subjectSha256: string;
}

/** Raw email and phone exist only inside this call; nothing here is logged. Null when nothing usable. */
export async function resolveSubject(input: SubjectInput): Promise<Subject | null> {
  const userId = input.userId ?? null;
  const userIdSha256 = userId === null ? null : await sha256Hex(userId);
  const emailSha256 = await hashEmail(input.email);
  const phoneSha256 = await hashPhone(input.phone, input.phoneCountry);
  if (!userIdSha256 && !emailSha256 && !phoneSha256) return null;
  const subjectSha256 = await sha256Hex(
    `u:${userIdSha256 ?? ""}|e:${emailSha256 ?? ""}|p:${phoneSha256 ?? ""}`,
  );
  return { userId, userIdSha256, emailSha256, phoneSha256, subjectSha256 };
}
