import { AGENT_LIMITS, agentErrorStatus, agentRequestSchema } from "../../functions/content/agentProtocol";
import { createProvider } from "../../functions/content/providers";
import { type ContentProvider, ProviderError } from "../../functions/content/providers/types";
import { createLogger } from "../../shared/logger";
import { EnvError, parseEnv } from "../common/parseEnv";
import { type AgentVars, agentVarsSchema } from "./env";

const log = createLogger({ worker: "agent" });
// One provider per isolate and env (the env object is the same for every request of an isolate).
const providers = new WeakMap<object, ContentProvider>();

function providerFor(env: object, vars: AgentVars): ContentProvider {
  let provider = providers.get(env);
  if (!provider) {
    provider = createProvider({
      provider: vars.CONTENT_PROVIDER,
      timeoutMs: vars.PROVIDER_TIMEOUT_MS,
      openai: {
        apiKey: vars.OPENAI_API_KEY,
        baseUrl: vars.OPENAI_BASE_URL,
        textModel: vars.OPENAI_TEXT_MODEL,
        imageModel: vars.OPENAI_IMAGE_MODEL,
      },
      anthropic: {
        apiKey: vars.ANTHROPIC_API_KEY,
        baseUrl: vars.ANTHROPIC_BASE_URL,
        model: vars.ANTHROPIC_MODEL,
      },
      vertex: {
        apiKey: vars.VERTEX_API_KEY,
        baseUrl: vars.VERTEX_BASE_URL,
        textModel: vars.VERTEX_TEXT_MODEL,
        imageModel: vars.VERTEX_IMAGE_MODEL,
      },
    });
    providers.set(env, provider);
  }
  return provider;
}

function fail(code: ProviderError["code"], message: string, retryable: boolean): Response {
  return Response.json({ error: { code, message, retryable } }, { status: agentErrorStatus(code) });
}

async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return [...digest].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * POST /generate { kind, prompt: { system, user }, frames? } → 200 with the media as the body (its type in
 * Content-Type; provider, model and SHA-256 in x-layers-* headers), or an error body { error: { code,
 * message, retryable } }. Logs carry the kind, provider, model, size and error code: never the prompt.
 */
export default {
  async fetch(request: Request, env: AgentBindings): Promise<Response> {
    const url = new URL(request.url);
    if (url.pathname !== "/generate") return Response.json({ error: { code: "not_found" } }, { status: 404 });
    if (request.method !== "POST")
      return Response.json({ error: { code: "method_not_allowed" } }, { status: 405 });
    let vars: AgentVars;
    try {
      vars = parseEnv(agentVarsSchema, env);
    } catch (error) {
      if (!(error instanceof EnvError)) throw error;
      // The message names the variables, never their values.
      log.error("invalid configuration", { error: error.message });
      return fail("agent_misconfigured", error.message, false);
    }
    const declared = Number(request.headers.get("content-length") ?? "0");
    if (declared > AGENT_LIMITS.requestBytes) {
      return fail("invalid_request", `The request is larger than ${AGENT_LIMITS.requestBytes} bytes.`, false);
    }
    const text = await request.text();
    if (new TextEncoder().encode(text).length > AGENT_LIMITS.requestBytes) {
      return fail("invalid_request", `The request is larger than ${AGENT_LIMITS.requestBytes} bytes.`, false);
    }
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      return fail("invalid_request", "The request body is not JSON.", false);
    }
    const parsed = agentRequestSchema.safeParse(body);
    if (!parsed.success) {
      const where = parsed.error.issues.map((i) => i.path.join(".") || "(body)").slice(0, 5);
      return fail("invalid_request", `The request is invalid at: ${where.join(", ")}.`, false);
    }
    const provider = providerFor(env, vars);
    const started = Date.now();
    try {
      const out = await provider.generate(parsed.data);
      log.info("generated", {
        kind: parsed.data.kind,
        provider: out.provider,
        model: out.model,
        bytes: out.media.length,
        ms: Date.now() - started,
      });
      return new Response(out.media, {
        headers: {
          "content-type": out.mediaType,
          "x-layers-provider": out.provider,
          "x-layers-model": out.model,
          "x-layers-sha256": await sha256Hex(out.media),
        },
      });
    } catch (error) {
      if (error instanceof ProviderError) {
        log.warn("generation failed", {
          kind: parsed.data.kind,
          provider: provider.name,
          code: error.code,
          status: error.status,
          ms: Date.now() - started,
        });
        return fail(error.code, error.message, error.retryable);
      }
      log.error("generation crashed", { kind: parsed.data.kind, provider: provider.name, error });
      return fail("provider_unavailable", "The agent failed unexpectedly.", true);
    }
  },
} satisfies ExportedHandler<AgentBindings>;
