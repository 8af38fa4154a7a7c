import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MAX_SIGNED_URL_SECONDS } from "../../functions/storage/objectStore";
import { type LocalS3, startLocalS3 } from "../support/s3";

// The object store's head and presigned GET, against the real local S3 server. s3rver checks the access
// key id of a presigned URL but not its signature or expiry, so what the URL promises (lifetime, download
// name) is asserted on the URL and the answer's headers; R2 and S3 enforce it.

let s3: LocalS3;
beforeAll(async () => {
  s3 = await startLocalS3();
});
afterAll(async () => {
  await s3.dispose();
});

describe("ObjectStore.head and signedGetUrl", () => {
  it("head gives the size and type of an object and undefined for a missing key", async () => {
    await s3.media.put("org/p/a.png", new Uint8Array([1, 2, 3]), "image/png");
    expect(await s3.media.head("org/p/a.png")).toEqual({ size: 3, contentType: "image/png" });
    expect(await s3.media.head("org/p/missing.png")).toBeUndefined();
  });

  it("a signed URL downloads the bytes without credentials, for the lifetime asked, under a safe file name", async () => {
    await s3.media.put("org/p/b.png", new Uint8Array([4, 5, 6, 7]), "image/png");
    const url = new URL(await s3.media.signedGetUrl("org/p/b.png", 900, { downloadName: 'x "y"\r\n.png' }));
    expect(url.searchParams.get("X-Amz-Expires")).toBe("900");
    expect(url.searchParams.get("X-Amz-Signature")).toMatch(/^[0-9a-f]{64}$/);
    // The secret access key never appears in a URL handed out.
    expect(url.toString()).not.toContain((s3.vars.S3_SECRET_ACCESS_KEY as string) + "/");
    const answer = await fetch(url);
    expect(answer.status).toBe(200);
    expect(answer.headers.get("content-disposition")).toBe('attachment; filename="x__y___.png"');
    expect(new Uint8Array(await answer.arrayBuffer())).toEqual(new Uint8Array([4, 5, 6, 7]));
  });

  it("refuses a lifetime outside 1 s .. 7 days", async () => {
    await expect(s3.media.signedGetUrl("k", 0)).rejects.toThrow(RangeError);
    await expect(s3.media.signedGetUrl("k", MAX_SIGNED_URL_SECONDS + 1)).rejects.toThrow(RangeError);
    await expect(s3.media.signedGetUrl("k", MAX_SIGNED_URL_SECONDS)).resolves.toContain(
      "X-Amz-Expires=604800",
    );
  });
});
