import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { PNG } from "pngjs";

// Local stand-ins for the model providers the agent Worker calls (as fakePlatforms.ts is for the relay):
// OpenAI's Responses and Images APIs, Anthropic's Messages API and Vertex AI's generateContent. Each checks
// every request against the provider's documented shape, its authentication header, and the privacy
// options we promise to set on every call (README, "Content generation"); a request that breaks one is
// answered 400 the way the provider answers a bad request, and the problem is recorded, so a test sees
// both the refusal and why. Faults can be injected: an HTTP status, a hang, or an unreadable body.

export type ProviderFault =
  | { kind: "status"; status: number; type?: string }
  | { kind: "hang" }
  | { kind: "body"; body: string };

export interface ProviderCall {
  path: string;
  headers: Record<string, string | string[] | undefined>;
  body: Record<string, unknown>;
  /** Why the fake refused the request (shape, auth or privacy), or null when it was valid. */
  problem: string | null;
  status: number;
}

export interface FakeProvider {
  /** The credential the fake accepts. */
  key: string;
  calls: ProviderCall[];
  /** The next `count` valid requests get `fault` instead of an answer. */
  failNext(count: number, fault: ProviderFault): void;
  /** Replaces the text the fake answers (copy and storyboards); null restores the default. */
  replyWith(text: string | null): void;
  reset(): void;
}

export interface FakeProviders {
  openai: FakeProvider;
  anthropic: FakeProvider;
  vertex: FakeProvider;
  /** Base URLs to configure the adapters (and the agent Worker's vars) with. */
  urls: { openai: string; anthropic: string; vertex: string };
  close(): Promise<void>;
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);

/** A real PNG from an independent encoder (pngjs), so the adapters' PNG checks meet a genuine file. */
export function fakePng(width = 8, height = 8): Buffer {
  const png = new PNG({ width, height });
  for (let i = 0; i < png.data.length; i += 4) {
    png.data[i] = 200;
    png.data[i + 1] = 80;
    png.data[i + 2] = 40;
    png.data[i + 3] = 255;
  }
  return PNG.sync.write(png);
}

/** The default text: a storyboard plan when the system prompt asks for JSON frames, else copy. */
function defaultText(system: string, user: string): string {
  const frames = /exactly (\d+) frames/.exec(system);
  if (frames) {
    const n = Number(frames[1]);
    return JSON.stringify({
      frames: Array.from({ length: n }, (_, i) => ({ caption: `Fake scene ${i + 1}`, durationMs: 2000 })),
    });
  }
  return `Fake copy for: ${user.slice(0, 80)}`;
}

// Shape and privacy checks, one function per endpoint: the first problem, or null.

const OPENAI_IMAGE_SIZES = new Set(["auto", "1024x1024", "1536x1024", "1024x1536"]);

export function openAiResponsesProblem(body: Record<string, unknown>): string | null {
  if (typeof body.model !== "string" || body.model === "") return "model is required";
  if (typeof body.input !== "string" && !Array.isArray(body.input)) return "input must be a string or a list";
  if (typeof body.input === "string" && body.input === "") return "input is empty";
  if (body.instructions !== undefined && typeof body.instructions !== "string")
    return "instructions must be a string";
  if (
    body.max_output_tokens !== undefined &&
    !(Number.isInteger(body.max_output_tokens) && (body.max_output_tokens as number) > 0)
  )
    return "max_output_tokens must be a positive integer";
  // Privacy: the response must not be kept as application state, nor chained, nor tied to an end user.
  if (body.store !== false) return "privacy: store must be false on every call";
  for (const field of ["previous_response_id", "user", "safety_identifier", "conversation", "background"]) {
    if (body[field] !== undefined) return `privacy: ${field} must not be sent`;
  }
  return null;
}

export function openAiImageProblem(body: Record<string, unknown>): string | null {
  if (typeof body.model !== "string" || !body.model.startsWith("gpt-image"))
    return "model must be a GPT image model";
  if (typeof body.prompt !== "string" || body.prompt === "") return "prompt is required";
  if (body.prompt.length > 32_000) return "prompt is longer than 32000 characters";
  if (
    body.n !== undefined &&
    !(Number.isInteger(body.n) && (body.n as number) >= 1 && (body.n as number) <= 10)
  )
    return "n must be 1 to 10";
  if (body.size !== undefined && !OPENAI_IMAGE_SIZES.has(String(body.size))) return "size is not supported";
  if (body.output_format !== undefined && !["png", "jpeg", "webp"].includes(String(body.output_format)))
    return "output_format must be png, jpeg or webp";
  // Documented: response_format is for DALL·E; GPT image models always answer b64_json.
  if (body.response_format !== undefined) return "response_format is not supported for GPT image models";
  if (body.user !== undefined) return "privacy: user must not be sent";
  return null;
}

export function anthropicProblem(
  headers: Record<string, string | string[] | undefined>,
  body: Record<string, unknown>,
): string | null {
  if (headers["anthropic-version"] !== "2023-06-01") return "anthropic-version header is required";
  if (!String(headers["content-type"]).startsWith("application/json")) return "content-type must be JSON";
  if (typeof body.model !== "string" || body.model === "") return "model is required";
  if (!(Number.isInteger(body.max_tokens) && (body.max_tokens as number) > 0))
    return "max_tokens must be a positive integer";
  if (body.system !== undefined && typeof body.system !== "string" && !Array.isArray(body.system))
    return "system must be a string or a list of blocks";
  const messages = body.messages;
  if (!Array.isArray(messages) || messages.length === 0) return "messages must be a non-empty list";
  for (const [i, m] of messages.entries()) {
    if (!isObject(m) || (m.role !== "user" && m.role !== "assistant")) return `messages.${i}.role is invalid`;
    if (i === 0 && m.role !== "user") return "the first message must be the user's";
    if (typeof m.content !== "string" && !Array.isArray(m.content)) return `messages.${i}.content is invalid`;
  }
  // Privacy: no end-user id, no stored features (Files API, batches) on a plain Messages call.
  if (isObject(body.metadata) && body.metadata.user_id !== undefined)
    return "privacy: metadata.user_id must not be sent";
  if (String(headers["anthropic-beta"] ?? "").includes("files-api"))
    return "privacy: the Files API is not used";
  return null;
}

export function vertexProblem(url: URL, body: Record<string, unknown>): string | null {
  if (url.searchParams.has("key")) return "privacy: the API key must not travel in the URL";
  const contents = body.contents;
  if (!Array.isArray(contents) || contents.length === 0) return "contents must be a non-empty list";
  for (const [i, c] of contents.entries()) {
    if (!isObject(c) || (c.role !== "user" && c.role !== "model")) return `contents.${i}.role is invalid`;
    if (!Array.isArray(c.parts) || c.parts.length === 0)
      return `contents.${i}.parts must be a non-empty list`;
    if (!c.parts.every((p) => isObject(p) && typeof p.text === "string"))
      return `contents.${i}.parts must be text`;
  }
  const si = body.systemInstruction;
  if (si !== undefined && !(isObject(si) && Array.isArray(si.parts)))
    return "systemInstruction must have parts";
  if (body.generationConfig !== undefined && !isObject(body.generationConfig))
    return "generationConfig must be an object";
  // Privacy: grounding keeps prompts 30 days, an explicit cache stores the content, labels travel to billing.
  for (const field of ["tools", "cachedContent", "labels"]) {
    if (body[field] !== undefined) return `privacy: ${field} must not be sent`;
  }
  return null;
}

function providerState(
  key: string,
): FakeProvider & { takeFault(): ProviderFault | undefined; reply: string | null } {
  let faults: ProviderFault[] = [];
  const state = {
    key,
    calls: [] as ProviderCall[],
    reply: null as string | null,
    failNext(count: number, fault: ProviderFault) {
      faults.push(...Array.from({ length: count }, () => fault));
    },
    replyWith(text: string | null) {
      state.reply = text;
    },
    reset() {
      faults = [];
      state.reply = null;
      state.calls.length = 0;
    },
    takeFault: () => faults.shift(),
  };
  return state;
}

async function readAll(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

export async function startFakeProviders(): Promise<FakeProviders> {
  const openai = providerState("sk-fake-openai-key");
  const anthropic = providerState("sk-ant-fake-anthropic-key");
  const vertex = providerState("AIza-fake-vertex-key");
  const hanging = new Set<ServerResponse>();

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? "/", "http://fake");
    const text = await readAll(req);
    let body: Record<string, unknown> = {};
    let parseProblem: string | null = null;
    try {
      const parsed: unknown = JSON.parse(text);
      if (isObject(parsed)) body = parsed;
      else parseProblem = "the body must be a JSON object";
    } catch {
      parseProblem = "the body is not JSON";
    }
    const send = (call: ProviderCall, status: number, payload: unknown) => {
      call.status = status;
      res.writeHead(status, { "Content-Type": "application/json" });
      res.end(JSON.stringify(payload));
    };

    /** Records the call; answers a problem or a fault; otherwise lets `answer` reply. */
    const serve = (
      p: ReturnType<typeof providerState>,
      authOk: boolean,
      problem: string | null,
      errorBody: (status: number, type: string, message: string) => unknown,
      answer: (call: ProviderCall) => void,
    ) => {
      const call: ProviderCall = {
        path: url.pathname + url.search,
        headers: req.headers,
        body,
        problem: null,
        status: 0,
      };
      p.calls.push(call);
      if (req.method !== "POST") {
        call.problem = "method must be POST";
        return send(call, 405, errorBody(405, "invalid_request_error", call.problem));
      }
      if (!authOk) {
        call.problem = "authentication failed";
        return send(call, 401, errorBody(401, "authentication_error", call.problem));
      }
      call.problem = parseProblem ?? problem;
      if (call.problem) return send(call, 400, errorBody(400, "invalid_request_error", call.problem));
      const fault = p.takeFault();
      if (fault?.kind === "status") {
        return send(
          call,
          fault.status,
          errorBody(fault.status, fault.type ?? "api_error", "injected failure"),
        );
      }
      if (fault?.kind === "hang") {
        hanging.add(res);
        return;
      }
      if (fault?.kind === "body") {
        call.status = 200;
        res.writeHead(200, { "Content-Type": "application/json" });
        res.end(fault.body);
        return;
      }
      answer(call);
    };

    const openAiError = (_status: number, type: string, message: string) => ({
      error: { message, type, param: null, code: null },
    });
    if (url.pathname === "/openai/v1/responses" || url.pathname === "/openai/v1/images/generations") {
      const authOk = req.headers.authorization === `Bearer ${openai.key}`;
      if (url.pathname.endsWith("/responses")) {
        return serve(openai, authOk, openAiResponsesProblem(body), openAiError, (call) => {
          const out = openai.reply ?? defaultText(String(body.instructions ?? ""), String(body.input));
          send(call, 200, {
            id: "resp_fake",
            object: "response",
            status: "completed",
            model: body.model,
            store: false,
            output: [
              {
                type: "message",
                id: "msg_fake",
                status: "completed",
                role: "assistant",
                content: [{ type: "output_text", text: out, annotations: [] }],
              },
            ],
          });
        });
      }
      return serve(openai, authOk, openAiImageProblem(body), openAiError, (call) => {
        send(call, 200, { created: 1, data: [{ b64_json: fakePng().toString("base64") }] });
      });
    }

    if (url.pathname === "/anthropic/v1/messages") {
      const authOk = req.headers["x-api-key"] === anthropic.key;
      const anthropicError = (_status: number, type: string, message: string) => ({
        type: "error",
        error: { type, message },
      });
      return serve(anthropic, authOk, anthropicProblem(req.headers, body), anthropicError, (call) => {
        const messages = body.messages as { content: unknown }[];
        const out = anthropic.reply ?? defaultText(String(body.system ?? ""), String(messages[0]?.content));
        send(call, 200, {
          id: "msg_fake",
          type: "message",
          role: "assistant",
          model: body.model,
          content: [{ type: "text", text: out }],
          stop_reason: "end_turn",
          usage: { input_tokens: 1, output_tokens: 1 },
        });
      });
    }

    const vertexPath = /^\/vertex\/v1\/publishers\/google\/models\/([^/:]+):generateContent$/.exec(
      url.pathname,
    );
    if (vertexPath) {
      const authOk = req.headers["x-goog-api-key"] === vertex.key;
      const vertexError = (status: number, type: string, message: string) => ({
        error: {
          code: status,
          message,
          status: type === "authentication_error" ? "UNAUTHENTICATED" : "INVALID_ARGUMENT",
        },
      });
      return serve(vertex, authOk, vertexProblem(url, body), vertexError, (call) => {
        const config = isObject(body.generationConfig) ? body.generationConfig : {};
        const wantsImage =
          Array.isArray(config.responseModalities) && config.responseModalities.includes("IMAGE");
        const contents = body.contents as { parts: { text: string }[] }[];
        const system = isObject(body.systemInstruction)
          ? (body.systemInstruction.parts as { text?: string }[]).map((p) => p.text ?? "").join("")
          : "";
        const parts = wantsImage
          ? [
              { text: "Here is the image." },
              { inlineData: { mimeType: "image/png", data: fakePng().toString("base64") } },
            ]
          : [{ text: vertex.reply ?? defaultText(system, contents[0]?.parts[0]?.text ?? "") }];
        send(call, 200, {
          candidates: [{ content: { role: "model", parts }, finishReason: "STOP" }],
          modelVersion: decodeURIComponent(vertexPath[1] ?? ""),
        });
      });
    }

    res.writeHead(404, { "Content-Type": "application/json" });
    res.end(JSON.stringify({ error: "no such fake route" }));
  };

  const server: Server = createServer((req, res) => {
    handle(req, res).catch(() => {
      res.writeHead(500);
      res.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  const base = `http://127.0.0.1:${port}`;
  return {
    openai,
    anthropic,
    vertex,
    urls: { openai: `${base}/openai/v1`, anthropic: `${base}/anthropic/v1`, vertex: `${base}/vertex/v1` },
    async close() {
      for (const res of hanging) res.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
