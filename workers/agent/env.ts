import { z } from "zod";
import { PROVIDER_NAMES, type ProviderName } from "../../functions/content/providers/types";

/** The secret each provider reads; the agent holds at most the chosen one. */
export const AGENT_PROVIDER_KEY_VARS = {
  local: undefined,
  openai: "OPENAI_API_KEY",
  anthropic: "ANTHROPIC_API_KEY",
  vertex: "VERTEX_API_KEY",
} as const satisfies Record<ProviderName, string | undefined>;

const optionalText = z.string().min(1).max(200).optional();
const optionalUrl = z.url().optional();

// The Worker's `env` is AgentBindings, generated from its wrangler.toml by `npm run types`. These are the
// vars and secrets it reads, validated once per isolate (parseEnv).
export const agentVarsSchema = z
  .object({
    CONTENT_PROVIDER: z.enum(PROVIDER_NAMES).default("local"),
    PROVIDER_TIMEOUT_MS: z.coerce.number().int().min(100).max(300_000).default(60_000),
    OPENAI_API_KEY: optionalText,
    ANTHROPIC_API_KEY: optionalText,
    VERTEX_API_KEY: optionalText,
    OPENAI_BASE_URL: optionalUrl,
    ANTHROPIC_BASE_URL: optionalUrl,
    VERTEX_BASE_URL: optionalUrl,
    OPENAI_TEXT_MODEL: optionalText,
    OPENAI_IMAGE_MODEL: optionalText,
    ANTHROPIC_MODEL: optionalText,
    VERTEX_TEXT_MODEL: optionalText,
    VERTEX_IMAGE_MODEL: optionalText,
  })
  .superRefine((vars, ctx) => {
    // Least privilege: the credential of a provider this deployment does not use has no business here.
    const chosen = AGENT_PROVIDER_KEY_VARS[vars.CONTENT_PROVIDER];
    for (const name of Object.values(AGENT_PROVIDER_KEY_VARS)) {
      if (name && name !== chosen && vars[name] !== undefined) {
        ctx.addIssue({
          code: "custom",
          path: [name],
          message: `must not be set: CONTENT_PROVIDER is ${vars.CONTENT_PROVIDER}`,
        });
      }
    }
  });
export type AgentVars = z.infer<typeof agentVarsSchema>;
