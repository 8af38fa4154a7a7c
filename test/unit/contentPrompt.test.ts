import { describe, expect, test } from "vitest";
import { buildPrompt, PromptError, promptInputSchema } from "../../functions/content/prompt";
import { createLocalProvider } from "../../functions/content/providers/local";
import { PROMPT_LIMITS } from "../../functions/content/providers/types";

// The prompt is built only from the brief, the product info and earlier creative of the same project: the
// input type has no place for anything else, and anything else is refused.

const base = {
  projectId: "proj_1",
  kind: "copy" as const,
  brief: { text: "Launch the Aurora trail shoe for weekend hikers", tone: "upbeat" },
  product: {
    name: "Aurora",
    description: "Waterproof, 280 g",
    features: ["Vibram sole"],
    url: "https://shop.example.com/aurora?utm_source=x&token=abc123",
  },
  earlierCreative: [
    { containerId: "ctr_1", projectId: "proj_1", kind: "copy" as const, text: "Go further." },
  ],
};

function refusal(input: unknown) {
  try {
    buildPrompt(input);
    return null;
  } catch (e) {
    return e instanceof PromptError ? { code: e.code, message: e.message } : e;
  }
}

describe("buildPrompt", () => {
  test("brief, product and earlier creative reach the prompt; the product page without its query", () => {
    const request = buildPrompt(base);
    expect(request.kind).toBe("copy");
    expect(request.prompt.system).toContain("ad copy");
    expect(request.prompt.user).toBe(
      [
        "Brief:\nLaunch the Aurora trail shoe for weekend hikers",
        "Tone:\nupbeat",
        "Product:\nProduct name: Aurora\nDescription: Waterproof, 280 g\n- Vibram sole\nPage: https://shop.example.com/aurora",
        "Earlier creative of this brand (stay consistent, do not repeat):\n1. (copy) Go further.",
      ].join("\n\n"),
    );
  });

  test("fields with no place in the input (event data, user ids) are refused, not ignored", () => {
    for (const extra of [
      { events: [{ name: "signup", userId: "u1" }] },
      { userId: "u1" },
      { brief: { ...base.brief, email: "jane@example.com" } },
      { product: { ...base.product, customers: ["u1"] } },
    ]) {
      expect(refusal({ ...base, ...extra })).toMatchObject({ code: "invalid_prompt_input" });
    }
    expect(Object.keys(promptInputSchema.shape).sort()).toEqual(
      ["brief", "earlierCreative", "frames", "kind", "product", "projectId"].sort(),
    );
  });

  test("creative of another project is refused", () => {
    const other = { ...base, earlierCreative: [{ ...base.earlierCreative[0], projectId: "proj_2" }] };
    expect(refusal(other)).toMatchObject({ code: "reference_other_project" });
  });

  test("limits are explicit: an over-long brief, too many features or frames out of bounds are refused", () => {
    expect(refusal({ ...base, brief: { text: "x".repeat(4_001) } })).toMatchObject({
      code: "invalid_prompt_input",
    });
    expect(refusal({ ...base, brief: { text: "   " } })).toMatchObject({ code: "invalid_prompt_input" });
    const features = Array.from({ length: 21 }, (_, i) => `f${i}`);
    expect(refusal({ ...base, product: { features } })).toMatchObject({ code: "invalid_prompt_input" });
    expect(refusal({ ...base, kind: "reel_storyboard", frames: 1 })).toMatchObject({
      code: "invalid_prompt_input",
    });
    // The largest valid input fits the providers' prompt limits.
    const big = buildPrompt({
      projectId: "p",
      kind: "copy",
      brief: {
        text: "b".repeat(4_000),
        tone: "t".repeat(200),
        audience: "a".repeat(500),
        callToAction: "c".repeat(200),
      },
      product: {
        name: "n".repeat(200),
        description: "d".repeat(2_000),
        features: Array.from({ length: 20 }, () => "f".repeat(200)),
      },
      earlierCreative: Array.from({ length: 5 }, (_, i) => ({
        containerId: `c${i}`,
        projectId: "p",
        kind: "copy",
        text: "e".repeat(1_000),
      })),
    });
    expect(big.prompt.user.length).toBeLessThanOrEqual(PROMPT_LIMITS.userChars);
  });

  test("credentials and URL tokens in the brief never reach the model", () => {
    const request = buildPrompt({
      ...base,
      brief: {
        text: "Use the asset at https://cdn.example.com/a.png?X-Amz-Signature=f00 and key sk-proj-AbCdEfGhIjKlMnOpQrSt",
      },
    });
    expect(request.prompt.user).toContain("https://cdn.example.com/a.png?X-Amz-Signature=...");
    expect(request.prompt.user).not.toContain("f00");
    expect(request.prompt.user).not.toContain("sk-proj-");
  });

  test("the local provider's copy is made of the built prompt's brief", async () => {
    const out = await createLocalProvider().generate(buildPrompt(base));
    const copy = new TextDecoder().decode(out.media);
    expect(copy).toContain("Aurora: Launch the Aurora trail shoe for weekend hikers");
    expect(copy).not.toContain("upbeat");
  });
});
