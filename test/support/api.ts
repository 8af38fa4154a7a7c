import { isDeepStrictEqual } from "node:util";
import { z } from "@hono/zod-openapi";
import { createApiApp, OPENAPI_INFO } from "../../workers/api/app";
import { ErrorSchema } from "../../workers/api/schemas";
import type { Stack } from "./stack";

// Partner-API calls as tests make them, read the one way the API defines its answers: with the zod schema
// the route itself declares for the status it answered (the same schema the OpenAPI document is generated
// from). A success is parsed with the route's response schema, an error with ErrorSchema; an answer that
// does not match — a missing field, a wrong type, or a field the schema does not declare — fails the test.

export type ApiError = z.infer<typeof ErrorSchema>["error"];
/** What invalid_request errors put in `details` (app.ts defaultHook): one entry per offending field. */
const FieldDetailsSchema = z.array(z.object({ field: z.string(), message: z.string() }));
export type FieldDetail = z.infer<typeof FieldDetailsSchema>[number];

/** An error's `details` as the field list it is (none: []); any other shape fails the test. */
export function errorDetails(error: ApiError): FieldDetail[] {
  return error.details === undefined ? [] : FieldDetailsSchema.parse(error.details);
}

export type Method = "GET" | "POST" | "PUT" | "PATCH" | "DELETE";

export interface CallOptions {
  idempotencyKey?: string;
  /** The request's clock (X-Layers-Test-Now; the test stack allows it). */
  now?: Date | string;
  headers?: Record<string, string>;
  /** A body sent as is (malformed JSON…), instead of JSON of `body`. */
  rawBody?: string;
  /** Content-Type to send instead of application/json; null sends none. */
  contentType?: string | null;
}

export interface Answer<T> {
  status: number;
  headers: Headers;
  text: string;
  /** The success body, parsed with the route's schema; reading it on an error answer fails the test. */
  readonly body: T;
  /** The error, parsed with ErrorSchema; reading it on a success fails the test. */
  readonly error: ApiError;
}

export interface Api {
  get<Res>(path: string, options?: CallOptions): Promise<Answer<Res>>;
  delete<Res = null>(path: string, options?: CallOptions): Promise<Answer<Res>>;
  post<Req, Res>(path: string, body?: Req, options?: CallOptions): Promise<Answer<Res>>;
  put<Req, Res>(path: string, body?: Req, options?: CallOptions): Promise<Answer<Res>>;
  patch<Req, Res>(path: string, body?: Req, options?: CallOptions): Promise<Answer<Res>>;
  send<Res>(method: Method, path: string, body?: unknown, options?: CallOptions): Promise<Answer<Res>>;
}

const transcripts = new WeakMap<Stack, string[]>();

/**
 * Every answer given through this client on `stack` so far ("METHOD path status [headers] body"), for tests
 * that assert a secret never appears in any answer.
 */
export function answersGiven(stack: Stack): readonly string[] {
  return transcripts.get(stack) ?? [];
}

/** Calls as the holder of `secret` (null: no Authorization header at all). */
export function api(stack: Stack, secret: string | null): Api {
  const send = <Res>(method: Method, path: string, body?: unknown, options: CallOptions = {}) =>
    call<Res>(stack, secret, method, path, body, options);
  return {
    get: (path, options) => send("GET", path, undefined, options),
    delete: (path, options) => send("DELETE", path, undefined, options),
    post: (path, body, options) => send("POST", path, body, options),
    put: (path, body, options) => send("PUT", path, body, options),
    patch: (path, body, options) => send("PATCH", path, body, options),
    send,
  };
}

export function requestHeaders(secret: string | null, options: CallOptions = {}): Record<string, string> {
  const headers: Record<string, string> = {};
  const contentType = options.contentType === undefined ? "application/json" : options.contentType;
  if (contentType !== null) headers["Content-Type"] = contentType;
  if (secret !== null) headers.Authorization = `Bearer ${secret}`;
  if (options.idempotencyKey !== undefined) headers["Idempotency-Key"] = options.idempotencyKey;
  if (options.now !== undefined) {
    headers["X-Layers-Test-Now"] = typeof options.now === "string" ? options.now : options.now.toISOString();
  }
  return { ...headers, ...options.headers };
}

async function call<Res>(
  stack: Stack,
  secret: string | null,
  method: Method,
  path: string,
  body: unknown,
  options: CallOptions,
): Promise<Answer<Res>> {
  const sent = options.rawBody ?? (body === undefined ? undefined : JSON.stringify(body));
  const response = await stack.api(path, {
    method,
    headers: requestHeaders(secret, options),
    ...(sent === undefined ? {} : { body: sent }),
  });
  const text = await response.text();
  const transcript = transcripts.get(stack) ?? [];
  transcripts.set(stack, transcript);
  transcript.push(`${method} ${path} ${response.status} ${JSON.stringify([...response.headers])} ${text}`);
  const label = `${method} ${path} → ${response.status}`;
  const parsed = readAnswer(method, path, response.status, response.headers, text, label);
  return {
    status: response.status,
    headers: response.headers,
    text,
    get body(): Res {
      if (response.status >= 400) throw new Error(`${label}: expected a success, got ${text}`);
      return parsed as Res;
    },
    get error(): ApiError {
      if (response.status < 400) throw new Error(`${label}: expected an error, got ${text}`);
      return (parsed as z.infer<typeof ErrorSchema>).error;
    },
  };
}

/** Checks the answer against the route's declared schema for its status; returns the JSON as sent. */
function readAnswer(
  method: Method,
  path: string,
  status: number,
  headers: Headers,
  text: string,
  label: string,
): unknown {
  const isJson = headers.get("Content-Type")?.includes("application/json") ?? false;
  if (status >= 400) {
    if (!isJson) throw new Error(`${label}: an error answer that is not JSON: ${text.slice(0, 200)}`);
    return checked(ErrorSchema, JSON.parse(text), label);
  }
  const route = routeFor(method, path);
  if (!route) throw new Error(`${label}: no route of the API matches`);
  const declared = route.responses[String(status)];
  if (!declared) throw new Error(`${label}: ${route.method} ${route.path} does not declare a ${status}`);
  if (!declared.schema) {
    if (text !== "") throw new Error(`${label}: the route declares no body, got ${text.slice(0, 200)}`);
    return null;
  }
  if (!isJson) return text; // a stream (NDJSON export): the test reads the text
  return checked(declared.schema, JSON.parse(text), label);
}

/** Parses with `schema` and refuses fields the schema does not declare (zod would silently drop them). */
function checked(schema: z.ZodType, json: unknown, label: string): unknown {
  const result = schema.safeParse(json);
  if (!result.success) {
    throw new Error(
      `${label}: the answer does not match its schema: ${result.error.message}\n${JSON.stringify(json)}`,
    );
  }
  if (!isDeepStrictEqual(result.data, json)) {
    throw new Error(
      `${label}: the answer has fields its schema does not declare\nsent:     ${JSON.stringify(json)}\ndeclared: ${JSON.stringify(result.data)}`,
    );
  }
  return json;
}

// --- The routes, read from the app itself -------------------------------------------------------------

export interface RouteInfo {
  method: Method;
  /** OpenAPI form: /v1/projects/{projectId} */
  path: string;
  tags: string[];
  requiredRole: string | undefined;
  orgWide: boolean;
  /** Status → the JSON schema of its body (undefined: no body). */
  responses: Record<string, { schema: z.ZodType | undefined }>;
  pattern: RegExp;
  literalSegments: number;
}

let cachedRoutes: RouteInfo[] | undefined;

/** Every route the API app registers through OpenAPI, with its declared schemas, role and key scope. */
export function apiRoutes(): RouteInfo[] {
  if (cachedRoutes) return cachedRoutes;
  const out: RouteInfo[] = [];
  for (const definition of createApiApp().openAPIRegistry.definitions) {
    if (definition.type !== "route") continue;
    const route = definition.route as typeof definition.route & {
      "x-required-role"?: string;
      "x-org-wide-key-only"?: boolean;
    };
    const responses: RouteInfo["responses"] = {};
    for (const [status, response] of Object.entries(route.responses)) {
      const media = "content" in response ? response.content?.["application/json"] : undefined;
      const schema = media && "schema" in media ? media.schema : undefined;
      responses[status] = { schema: schema && "safeParse" in schema ? (schema as z.ZodType) : undefined };
    }
    const segments = route.path.split("/");
    out.push({
      method: route.method.toUpperCase() as Method,
      path: route.path,
      tags: route.tags ?? [],
      requiredRole: route["x-required-role"],
      orgWide: route["x-org-wide-key-only"] === true,
      responses,
      pattern: new RegExp(
        `^${segments.map((s) => (/^\{\w+\}$/.test(s) ? "[^/]+" : s.replace(/[.*+?^$()|[\]\\]/g, "\\$&"))).join("/")}$`,
      ),
      literalSegments: segments.filter((s) => !s.startsWith("{")).length,
    });
  }
  cachedRoutes = out;
  return out;
}

/** The route a concrete path reaches (the most specific template when several match). */
export function routeFor(method: string, path: string): RouteInfo | undefined {
  const pathname = path.split("?")[0] as string;
  return apiRoutes()
    .filter((r) => r.method === method.toUpperCase() && r.pattern.test(pathname))
    .sort((a, b) => b.literalSegments - a.literalSegments)[0];
}

/** The OpenAPI document the API serves, generated in this process from the same app. */
export function openApiDocument() {
  return createApiApp().getOpenAPI31Document({ ...OPENAPI_INFO, security: [{ apiKey: [] }] });
}
