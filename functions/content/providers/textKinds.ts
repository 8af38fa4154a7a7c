import { buildStoryboard, parseFramePlan, STORYBOARD_MEDIA_TYPE, storyboardInstruction } from "./storyboard";
import {
  type GeneratedMedia,
  type GeneratePrompt,
  type GenerateRequest,
  ProviderError,
  type ProviderName,
  STORYBOARD_FRAMES,
} from "./types";

/** The longest copy we keep from a model (characters): a runaway answer is cut, not stored whole. */
export const COPY_MAX_CHARS = 20_000;

/** Calls a text model once: (system, user, wants JSON) → its text. */
export type TextCall = (prompt: GeneratePrompt, json: boolean) => Promise<string>;

/**
 * Copy and reel storyboards from any text model: copy is its text; a storyboard is its JSON frame plan
 * (storyboard.ts) with the pictures rendered here.
 */
export async function textKind(
  request: GenerateRequest,
  call: TextCall,
  provider: ProviderName,
  model: string,
): Promise<GeneratedMedia> {
  if (request.kind === "copy") {
    const text = (await call(request.prompt, false)).trim();
    if (text === "") throw new ProviderError("provider_bad_response", "The model answered no text.");
    return {
      media: new TextEncoder().encode(text.slice(0, COPY_MAX_CHARS)),
      mediaType: "text/plain; charset=utf-8",
      provider,
      model,
    };
  }
  if (request.kind === "reel_storyboard") {
    const frames = request.frames ?? STORYBOARD_FRAMES.default;
    const system = `${request.prompt.system}\n\n${storyboardInstruction(frames)}`;
    const text = await call({ system, user: request.prompt.user }, true);
    const plan = parseFramePlan(text, frames);
    return {
      media: buildStoryboard(plan, `${request.prompt.system}\n${request.prompt.user}`),
      mediaType: STORYBOARD_MEDIA_TYPE,
      provider,
      model,
    };
  }
  throw new ProviderError(
    "unsupported_kind",
    `The ${provider} provider cannot make ${request.kind} from text.`,
  );
}
