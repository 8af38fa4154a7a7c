import { IMAGE_SIZE, renderPng } from "./render";
import { buildStoryboard, FRAME_DURATION_MS, STORYBOARD_MEDIA_TYPE } from "./storyboard";
import {
  type ContentKind,
  type ContentProvider,
  checkRequest,
  type GeneratedMedia,
  type GenerateRequest,
  ProviderError,
  STORYBOARD_FRAMES,
} from "./types";

// The deterministic local provider: the default for `npm run dev` and the tests. No network, no model, no
// key: copy is arranged from the brief's own words, an image is rendered from a hash of the prompt, a reel
// storyboard is the brief cut into frames with rendered pictures. The same prompt always gives the same
// bytes. It makes no video: there is no video encoder here, and a fake "video" would be a lie.

export const LOCAL_MODEL = "layers-local-1";
const KINDS: readonly ContentKind[] = ["copy", "image", "reel_storyboard"];

/** The brief part of a prompt built by functions/content/prompt.ts (its "Brief:" section), else all of it. */
export function briefText(user: string): string {
  const match = /(?:^|\n)Brief:\n([\s\S]*?)(?:\n\n[A-Z][A-Za-z ]*:\n|$)/.exec(user);
  return (match?.[1] ?? user).replace(/\s+/g, " ").trim();
}

function productName(user: string): string | undefined {
  return /(?:^|\n)Product name: (.+)/.exec(user)?.[1]?.trim();
}

function words(text: string): string[] {
  return text.split(" ").filter((w) => w !== "");
}

function sentenceCase(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

export function localCopy(user: string): string {
  const brief = briefText(user);
  const all = words(brief);
  const headline = sentenceCase(
    all
      .slice(0, 8)
      .join(" ")
      .replace(/[.,;:!?]+$/, ""),
  );
  const product = productName(user);
  const body = product ? `${product}: ${brief}` : brief;
  return `${headline}\n\n${body}\n\nLearn more today.\n`;
}

export function localFramePlan(user: string, frames: number) {
  const all = words(briefText(user));
  const per = Math.max(1, Math.ceil(all.length / frames));
  return Array.from({ length: frames }, (_, i) => {
    const chunk = all.slice(i * per, (i + 1) * per).join(" ");
    return {
      caption: `Scene ${i + 1}: ${chunk || all.slice(-per).join(" ")}`,
      durationMs: FRAME_DURATION_MS.default,
    };
  });
}

export function createLocalProvider(): ContentProvider {
  const provider: ContentProvider = {
    name: "local",
    kinds: KINDS,
    async generate(request: GenerateRequest): Promise<GeneratedMedia> {
      checkRequest(provider, request);
      const seed = `${request.prompt.system}\n${request.prompt.user}`;
      const out = (media: Uint8Array, mediaType: string): GeneratedMedia => ({
        media,
        mediaType,
        provider: "local",
        model: LOCAL_MODEL,
      });
      switch (request.kind) {
        case "copy":
          return out(new TextEncoder().encode(localCopy(request.prompt.user)), "text/plain; charset=utf-8");
        case "image":
          return out(renderPng({ seed, ...IMAGE_SIZE }), "image/png");
        case "reel_storyboard": {
          const frames = request.frames ?? STORYBOARD_FRAMES.default;
          return out(
            buildStoryboard(localFramePlan(request.prompt.user, frames), seed),
            STORYBOARD_MEDIA_TYPE,
          );
        }
        default:
          throw new ProviderError("unsupported_kind", `The local provider cannot make ${request.kind}.`);
      }
    },
  };
  return provider;
}
