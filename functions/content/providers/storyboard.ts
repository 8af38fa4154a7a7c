import { isObject, toBase64 } from "./http";
import { FRAME_SIZE, renderPng } from "./render";
import { ProviderError, STORYBOARD_FRAMES, STORYBOARD_MEDIA_TYPE } from "./types";

// A reel storyboard is one JSON document: the frames in order, each with its caption, how long it stays on
// screen and its picture as a PNG (base64). One object, so a container holds a whole storyboard and a
// partner downloads it in one request; the frames are real PNGs any viewer opens. Text models write the
// frames' captions and timings; the pictures are rendered here (render.ts), the same way for every
// provider, so a storyboard costs one model call, not one per frame.

export interface StoryboardFrame {
  index: number;
  durationMs: number;
  caption: string;
  image: { mediaType: "image/png"; width: number; height: number; base64: string };
}

export interface Storyboard {
  type: "layers.storyboard";
  version: 1;
  frames: StoryboardFrame[];
}

export const FRAME_DURATION_MS = { min: 500, max: 10_000, default: 2_500 } as const;
const CAPTION_MAX = 300;

export interface FramePlan {
  caption: string;
  durationMs: number;
}

/** The storyboard's bytes: the plan's frames with their pictures rendered from `seed`. */
export function buildStoryboard(plan: FramePlan[], seed: string): Uint8Array {
  const doc: Storyboard = {
    type: "layers.storyboard",
    version: 1,
    frames: plan.map((frame, index) => ({
      index,
      durationMs: frame.durationMs,
      caption: frame.caption,
      image: {
        mediaType: "image/png",
        ...FRAME_SIZE,
        base64: toBase64(renderPng({ seed, ...FRAME_SIZE, index })),
      },
    })),
  };
  return new TextEncoder().encode(JSON.stringify(doc));
}

export { STORYBOARD_MEDIA_TYPE };

/** What a text model is told to answer for a storyboard (appended to our system prompt). */
export function storyboardInstruction(frames: number): string {
  return (
    `Answer with JSON only, no prose: {"frames":[{"caption":string,"durationMs":integer}]} with exactly ` +
    `${frames} frames in order. Each caption is at most ${CAPTION_MAX} characters; durationMs is between ` +
    `${FRAME_DURATION_MS.min} and ${FRAME_DURATION_MS.max}.`
  );
}

/**
 * Reads a model's storyboard answer: the JSON object in it (a Markdown fence or a sentence around it is
 * tolerated), its frames checked and bounded. More frames than asked are cut to `frames`; fewer than the
 * minimum, or anything unreadable, is provider_bad_response.
 */
export function parseFramePlan(text: string, frames: number): FramePlan[] {
  const start = text.indexOf("{");
  const end = text.lastIndexOf("}");
  let parsed: unknown;
  try {
    parsed = start === -1 || end < start ? undefined : JSON.parse(text.slice(start, end + 1));
  } catch {
    parsed = undefined;
  }
  const list = isObject(parsed) && Array.isArray(parsed.frames) ? parsed.frames : undefined;
  if (!list)
    throw new ProviderError("provider_bad_response", "The model's storyboard is not the JSON asked for.");
  const plan: FramePlan[] = [];
  for (const item of list.slice(0, frames)) {
    if (!isObject(item) || typeof item.caption !== "string" || item.caption.trim() === "") {
      throw new ProviderError("provider_bad_response", "A storyboard frame has no caption.");
    }
    const duration =
      typeof item.durationMs === "number" && Number.isFinite(item.durationMs)
        ? Math.round(item.durationMs)
        : FRAME_DURATION_MS.default;
    plan.push({
      caption: item.caption.trim().slice(0, CAPTION_MAX),
      durationMs: Math.min(FRAME_DURATION_MS.max, Math.max(FRAME_DURATION_MS.min, duration)),
    });
  }
  if (plan.length < STORYBOARD_FRAMES.min) {
    throw new ProviderError("provider_bad_response", `The model's storyboard has ${plan.length} frames.`);
  }
  return plan;
}
