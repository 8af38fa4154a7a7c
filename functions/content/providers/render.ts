import { encode } from "fast-png";

// Pictures made without a model: the local provider's images and every storyboard's frames. Deterministic
// (the same seed gives the same bytes), so tests and `npm run dev` get stable artifacts with no network.
//
// PNG encoding is fast-png (pure TypeScript, zlib through fflate): it runs unchanged in workerd and Node,
// needs neither nodejs_compat nor a Node stream (pngjs does), and encodes RGBA in one call. The hand-rolled
// alternative (CompressionStream("deflate") + a CRC-32 table) is asynchronous and is code we would own.

export const IMAGE_SIZE = { width: 512, height: 512 } as const;
/** A reel frame is portrait 9:16, small: a storyboard is a plan, not the final video. */
export const FRAME_SIZE = { width: 270, height: 480 } as const;

/** FNV-1a: a stable 32-bit seed from text. */
function hash32(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

/** mulberry32: a small, fast, deterministic generator in [0, 1). */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Rgb = [number, number, number];

function hsl(h: number, s: number, l: number): Rgb {
  const k = (n: number) => (n + h / 30) % 12;
  const a = s * Math.min(l, 1 - l);
  const f = (n: number) => l - a * Math.max(-1, Math.min(k(n) - 3, Math.min(9 - k(n), 1)));
  return [Math.round(f(0) * 255), Math.round(f(8) * 255), Math.round(f(4) * 255)];
}

export interface RenderOptions {
  seed: string;
  width: number;
  height: number;
  /** A storyboard frame's position: shown as a row of marks along the bottom, so frames differ visibly. */
  index?: number;
}

/**
 * An abstract composition from `seed`: a diagonal two-colour gradient, a few translucent discs and, for a
 * frame, its number as marks. Returns the PNG bytes (8-bit RGBA).
 */
export function renderPng(options: RenderOptions): Uint8Array {
  const { width, height } = options;
  const rand = random(hash32(`${options.seed}#${options.index ?? 0}`));
  const hue = rand() * 360;
  const from = hsl(hue, 0.65, 0.55);
  const to = hsl((hue + 60 + rand() * 120) % 360, 0.7, 0.35);
  const data = new Uint8Array(width * height * 4);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const t = (x / width + y / height) / 2;
      const o = (y * width + x) * 4;
      data[o] = Math.round(from[0] + (to[0] - from[0]) * t);
      data[o + 1] = Math.round(from[1] + (to[1] - from[1]) * t);
      data[o + 2] = Math.round(from[2] + (to[2] - from[2]) * t);
      data[o + 3] = 255;
    }
  }
  const discs = 3 + Math.floor(rand() * 4);
  for (let d = 0; d < discs; d++) {
    const cx = rand() * width;
    const cy = rand() * height;
    const r = (0.08 + rand() * 0.2) * Math.min(width, height);
    const color = hsl((hue + 180 + rand() * 90) % 360, 0.6, 0.6 + rand() * 0.2);
    blend(data, width, height, cx - r, cy - r, cx + r, cy + r, color, 0.55, (x, y) => {
      return (x - cx) ** 2 + (y - cy) ** 2 <= r * r;
    });
  }
  if (options.index !== undefined) {
    const mark = Math.max(4, Math.floor(width / 30));
    for (let i = 0; i <= options.index; i++) {
      const x0 = mark + i * mark * 2;
      blend(data, width, height, x0, height - mark * 3, x0 + mark, height - mark * 2, [255, 255, 255], 0.9);
    }
  }
  return encode({ width, height, data, channels: 4, depth: 8 });
}

function blend(
  data: Uint8Array,
  width: number,
  height: number,
  x0: number,
  y0: number,
  x1: number,
  y1: number,
  color: Rgb,
  alpha: number,
  inside: (x: number, y: number) => boolean = () => true,
): void {
  for (let y = Math.max(0, Math.floor(y0)); y < Math.min(height, Math.ceil(y1)); y++) {
    for (let x = Math.max(0, Math.floor(x0)); x < Math.min(width, Math.ceil(x1)); x++) {
      if (!inside(x, y)) continue;
      const o = (y * width + x) * 4;
      for (let c = 0; c < 3; c++) {
        data[o + c] = Math.round((data[o + c] as number) * (1 - alpha) + color[c as 0 | 1 | 2] * alpha);
      }
    }
  }
}
