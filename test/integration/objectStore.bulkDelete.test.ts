import { afterAll, beforeAll, expect, test } from "vitest";
import { deleteKeys } from "../../functions/lifecycle/objects";
import { type LocalS3, startLocalS3 } from "../support/s3";

// A deletion's object step lists a prefix a page (1,000 keys) at a time and removes keys a thousand per
// DeleteObjects request. Media keys are laid out as media/<org>/<project>/<container>, so a big project's
// keys share one "directory" on the local S3 server, whose own defects (scripts/local/s3rver.ts) failed
// every listing past the first page and some of those deletes: an org with more than a thousand objects
// could never be erased in `npm run dev` or the bench.

let s3: LocalS3;
beforeAll(async () => {
  s3 = await startLocalS3();
});
afterAll(async () => {
  await s3.dispose();
});

async function keysUnder(prefix: string): Promise<string[]> {
  const keys: string[] = [];
  let startAfter: string | undefined;
  for (;;) {
    const page = await s3.media.list(prefix, startAfter ? { startAfter } : {});
    keys.push(...page.keys);
    if (!page.next || page.keys.length === 0) return keys;
    startAfter = page.keys.at(-1);
  }
}

test("2,500 media objects of one project are listed page by page and deleted in bulk; the other project's stay", async () => {
  const doomed = Array.from(
    { length: 2_500 },
    (_, i) => `media/org-a/project-1/c${String(i).padStart(5, "0")}`,
  );
  const kept = Array.from({ length: 3 }, (_, i) => `media/org-a/project-2/c${i}`);
  const bytes = new Uint8Array([1]);
  for (let i = 0; i < doomed.length; i += 100) {
    await Promise.all(doomed.slice(i, i + 100).map((key) => s3.media.put(key, bytes, "image/png")));
  }
  await Promise.all(kept.map((key) => s3.media.put(key, bytes, "image/png")));
  expect(await keysUnder("media/org-a/project-1/")).toHaveLength(2_500);

  await deleteKeys(s3.media, doomed);

  expect(await keysUnder("media/org-a/project-1/")).toEqual([]);
  expect(await keysUnder("media/org-a/project-2/")).toEqual(kept);
}, 120_000);
