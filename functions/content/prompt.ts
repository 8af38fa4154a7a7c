import { z } from "zod";
import { CONTENT_KINDS, type GenerateRequest, STORYBOARD_FRAMES } from "./providers/types";
import { redactText } from "./redact";

// The prompt a model sees is built here and only here, from three things: the partner's brief, their
// product info and earlier creative of the same project. The input schema is strict — a field it does not
// name (an event, a user id, a list of users) is refused, not ignored — so nothing from sdk_events can
// reach a model through this function, by construction. Credentials and URL tokens are stripped from
// every string (a model needs neither); fields the partner marks sensitive do reach the model (the
// partner asked for them to be used) but are redacted from every log and row (redact.ts).

const text = (max: number) => z.string().trim().min(1).max(max);

export const PROMPT_INPUT_LIMITS = {
  brief: 4_000,
  tone: 200,
  audience: 500,
  callToAction: 200,
  productName: 200,
  productDescription: 2_000,
  features: 20,
  feature: 200,
  earlierCreative: 5,
  creativeText: 1_000,
} as const;

const L = PROMPT_INPUT_LIMITS;

export const promptInputSchema = z
  .object({
    projectId: z.string().min(1).max(64),
    kind: z.enum(CONTENT_KINDS),
    frames: z.number().int().min(STORYBOARD_FRAMES.min).max(STORYBOARD_FRAMES.max).optional(),
    brief: z
      .object({
        text: text(L.brief),
        tone: text(L.tone).optional(),
        audience: text(L.audience).optional(),
        callToAction: text(L.callToAction).optional(),
      })
      .strict(),
    product: z
      .object({
        name: text(L.productName).optional(),
        description: text(L.productDescription).optional(),
        features: z.array(text(L.feature)).max(L.features).optional(),
        url: z.url().max(2_000).optional(),
      })
      .strict()
      .optional(),
    /** Earlier outputs of the same project, as the workflow reads them from its containers. */
    earlierCreative: z
      .array(
        z
          .object({
            containerId: z.string().min(1).max(64),
            projectId: z.string().min(1).max(64),
            kind: z.enum(CONTENT_KINDS),
            text: text(L.creativeText),
          })
          .strict(),
      )
      .max(L.earlierCreative)
      .optional(),
  })
  .strict();

export type PromptInput = z.infer<typeof promptInputSchema>;

export class PromptError extends Error {
  override readonly name = "PromptError";
  constructor(
    readonly code: "invalid_prompt_input" | "reference_other_project",
    message: string,
  ) {
    super(message);
  }
}

const KIND_TASK: Record<PromptInput["kind"], string> = {
  copy: "Write the ad copy: a headline, two or three sentences of body text and a call to action.",
  image: "Create one square advertising image for this product. No text in the image unless the brief asks.",
  reel_storyboard: "Plan a short vertical video reel as a storyboard of scenes.",
  video: "Create a short vertical advertising video.",
};

/**
 * The request for the agent Worker. Throws PromptError with a stable code when the input has an unknown
 * field, breaks a limit, or names creative of another project.
 */
export function buildPrompt(raw: unknown): GenerateRequest {
  const parsed = promptInputSchema.safeParse(raw);
  if (!parsed.success) {
    const where = parsed.error.issues.map((i) => i.path.join(".") || "(input)").slice(0, 5);
    throw new PromptError("invalid_prompt_input", `The prompt input is invalid at: ${where.join(", ")}.`);
  }
  const input = parsed.data;
  for (const creative of input.earlierCreative ?? []) {
    if (creative.projectId !== input.projectId) {
      throw new PromptError(
        "reference_other_project",
        `Container ${creative.containerId} belongs to another project: only this project's creative may be used.`,
      );
    }
  }
  const clean = (value: string) => redactText(value).replace(/\s+\n/g, "\n").trim();
  const sections: string[] = [`Brief:\n${clean(input.brief.text)}`];
  const { tone, audience, callToAction } = input.brief;
  if (tone) sections.push(`Tone:\n${clean(tone)}`);
  if (audience) sections.push(`Audience:\n${clean(audience)}`);
  if (callToAction) sections.push(`Call to action:\n${clean(callToAction)}`);
  const product = input.product;
  if (product) {
    const lines: string[] = [];
    if (product.name) lines.push(`Product name: ${clean(product.name)}`);
    if (product.description) lines.push(`Description: ${clean(product.description)}`);
    for (const feature of product.features ?? []) lines.push(`- ${clean(feature)}`);
    // Only where the product lives: query and fragment often carry tokens or tracking ids.
    if (product.url) {
      const url = new URL(product.url);
      lines.push(`Page: ${url.origin}${url.pathname}`);
    }
    if (lines.length > 0) sections.push(`Product:\n${lines.join("\n")}`);
  }
  const creative = input.earlierCreative ?? [];
  if (creative.length > 0) {
    sections.push(
      `Earlier creative of this brand (stay consistent, do not repeat):\n${creative
        .map((c, i) => `${i + 1}. (${c.kind}) ${clean(c.text)}`)
        .join("\n")}`,
    );
  }
  return {
    kind: input.kind,
    ...(input.frames === undefined ? {} : { frames: input.frames }),
    prompt: {
      system:
        "You are a creative assistant producing advertising content for the brand described by the user. " +
        `${KIND_TASK[input.kind]} Use only the information given; invent no prices, claims or people.`,
      user: sections.join("\n\n"),
    },
  };
}
