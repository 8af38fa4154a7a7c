import http from "node:http";

export interface LoadTarget {
  /** Miniflare's URL (`await mf.ready`). */
  url: URL;
  /** Host header: Miniflare routes by it, so both Workers sit behind the same socket. */
  host: string;
  /** POST by default; a GET is sent without a body. */
  method?: "GET" | "POST";
  path: string;
  headers: Record<string, string>;
  /** Headers that must differ per request (an Idempotency-Key); called once per request. */
  headersFor?: () => Record<string, string>;
  /** Pre-built bodies, sent round-robin, so building JSON is not part of the client's per-request work. */
  bodies: string[];
}

export interface LoadResult {
  requests: number;
  elapsedMs: number;
  /** Wall time of each request, from sending it to having read its response in full. */
  latenciesMs: number[];
  /** Responses other than the expected status, with the first body seen, to fail loudly. */
  unexpected: { count: number; firstStatus?: number; firstBody?: string };
}

/**
 * Closed-loop load: `concurrency` workers, each sending its next request as soon as the previous response
 * has been read in full, over keep-alive sockets, until `durationMs` has passed. Both Workers are driven
 * by this same function, so client overhead is identical on both sides of a ratio.
 */
export async function runLoad(
  target: LoadTarget,
  options: { concurrency: number; durationMs: number; expectStatus: number },
): Promise<LoadResult> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: options.concurrency });
  const result: LoadResult = { requests: 0, elapsedMs: 0, latenciesMs: [], unexpected: { count: 0 } };
  const method = target.method ?? "POST";
  const bodies = method === "GET" ? [undefined] : target.bodies.map((b) => Buffer.from(b));
  let next = 0;
  const started = performance.now();
  const deadline = started + options.durationMs;

  const send = (body: Buffer | undefined) =>
    new Promise<void>((resolve, reject) => {
      const sentAt = performance.now();
      const req = http.request(
        {
          agent,
          host: target.url.hostname,
          port: target.url.port,
          method,
          path: target.path,
          headers: {
            ...target.headers,
            ...target.headersFor?.(),
            host: target.host,
            ...(body ? { "content-length": body.byteLength } : {}),
          },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (chunk: Buffer) => chunks.push(chunk));
          res.on("end", () => {
            result.requests += 1;
            result.latenciesMs.push(performance.now() - sentAt);
            if (res.statusCode !== options.expectStatus) {
              result.unexpected.count += 1;
              result.unexpected.firstStatus ??= res.statusCode;
              result.unexpected.firstBody ??= Buffer.concat(chunks).toString("utf8").slice(0, 500);
            }
            resolve();
          });
          res.on("error", reject);
        },
      );
      req.on("error", reject);
      req.end(body);
    });

  const worker = async () => {
    while (performance.now() < deadline) {
      await send(bodies[next++ % bodies.length]);
    }
  };
  try {
    await Promise.all(Array.from({ length: options.concurrency }, worker));
  } finally {
    agent.destroy();
  }
  result.elapsedMs = performance.now() - started;
  return result;
}

/** The p-th percentile (0–100) of `values` by nearest rank; NaN when there are none. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}
