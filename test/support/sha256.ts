import { createHash } from "node:crypto";

/** Expected digests are computed with node:crypto, independently of the code under test. */
export function sha256(value: string): string {
  return createHash("sha256").update(value, "utf8").digest("hex");
}
