import { PNG } from "pngjs";
import { describe, expect, test } from "vitest";
import { createLocalProvider, LOCAL_MODEL } from "../../functions/content/providers/local";
import type { Storyboard } from "../../functions/content/providers/storyboard";
import { ProviderError, STORYBOARD_MEDIA_TYPE } from "../../functions/content/providers/types";

// The local provider is what `npm run dev` and every test generate with: its artifacts must be real
// (a PNG any decoder opens, copy made of the brief, a storyboard with the frames asked for) and stable.

const provider = createLocalProvider();
const prompt = {
  system: "You write short ad creative.",
  user: "Brief:\nLaunch the Aurora trail shoe for weekend hikers, waterproof and light\n\nProduct name: Aurora",
};

/** Signature, then IHDR as the first chunk with the stated size; and an independent decoder agrees. */
function expectPng(bytes: Uint8Array, width: number, height: number) {
  expect([...bytes.subarray(0, 8)]).toEqual([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  expect(new TextDecoder().decode(bytes.subarray(12, 16))).toBe("IHDR");
  expect([view.getUint32(16), view.getUint32(20)]).toEqual([width, height]);
  const decoded = PNG.sync.read(Buffer.from(bytes));
  expect([decoded.width, decoded.height]).toEqual([width, height]);
  return decoded;
}

describe("local provider", () => {
  test("copy is made from the brief's own words, as UTF-8 text", async () => {
    const out = await provider.generate({ kind: "copy", prompt });
    expect(out).toMatchObject({
      mediaType: "text/plain; charset=utf-8",
      provider: "local",
      model: LOCAL_MODEL,
    });
    const text = new TextDecoder().decode(out.media);
    for (const word of ["Aurora", "trail", "waterproof", "hikers"]) expect(text).toContain(word);
    expect(text.split("\n")[0]).toBe("Launch the Aurora trail shoe for weekend hikers,".replace(/,$/, ""));
  });

  test("an image is a real 512×512 PNG that another decoder reads, the same bytes for the same prompt", async () => {
    const a = await provider.generate({ kind: "image", prompt });
    expect(a.mediaType).toBe("image/png");
    const decoded = expectPng(a.media, 512, 512);
    // Not a blank canvas: the picture has many colours.
    const colours = new Set<number>();
    for (let i = 0; i < decoded.data.length; i += 4 * 97) colours.add(decoded.data.readUInt32BE(i));
    expect(colours.size).toBeGreaterThan(50);
    const again = await provider.generate({ kind: "image", prompt });
    expect(Buffer.from(again.media).equals(Buffer.from(a.media))).toBe(true);
    const other = await provider.generate({
      kind: "image",
      prompt: { ...prompt, user: "Brief:\nSomething else" },
    });
    expect(Buffer.from(other.media).equals(Buffer.from(a.media))).toBe(false);
  });

  test("a reel storyboard has the frames asked for, each with a caption from the brief and a PNG", async () => {
    const out = await provider.generate({ kind: "reel_storyboard", prompt, frames: 4 });
    expect(out.mediaType).toBe(STORYBOARD_MEDIA_TYPE);
    const board = JSON.parse(new TextDecoder().decode(out.media)) as Storyboard;
    expect(board).toMatchObject({ type: "layers.storyboard", version: 1 });
    expect(board.frames.map((f) => f.index)).toEqual([0, 1, 2, 3]);
    expect(board.frames.map((f) => f.caption).join(" ")).toContain("waterproof");
    const pictures = board.frames.map((f) => {
      expect(f.durationMs).toBeGreaterThanOrEqual(500);
      expectPng(Buffer.from(f.image.base64, "base64"), 270, 480);
      return f.image.base64;
    });
    // Each frame is its own picture.
    expect(new Set(pictures).size).toBe(4);
    const byDefault = await provider.generate({ kind: "reel_storyboard", prompt });
    expect((JSON.parse(new TextDecoder().decode(byDefault.media)) as Storyboard).frames).toHaveLength(6);
  });

  test("out-of-bounds requests and video are refused with stable, final codes", async () => {
    const refused = async (request: Parameters<typeof provider.generate>[0]) =>
      provider.generate(request).then(
        () => null,
        (e: unknown) => (e instanceof ProviderError ? { code: e.code, retryable: e.retryable } : e),
      );
    expect(await refused({ kind: "video", prompt })).toEqual({ code: "unsupported_kind", retryable: false });
    expect(await refused({ kind: "copy", prompt: { system: "", user: "   " } })).toEqual({
      code: "invalid_request",
      retryable: false,
    });
    expect(await refused({ kind: "reel_storyboard", prompt, frames: 13 })).toEqual({
      code: "invalid_request",
      retryable: false,
    });
    expect(await refused({ kind: "copy", prompt: { system: "", user: "x".repeat(20_001) } })).toMatchObject({
      code: "invalid_request",
    });
  });
});
