import http from "node:http";

export interface LoadTarget {
  /** Miniflare's URL (`await mf.ready`). */
  url: URL;
  /** Host header: Miniflare routes by it, so both Workers sit behind the same socket. */
  host: string;
  path: string;
  headers: Record<string, string>;
  /** Pre-built bodies, sent round-robin, so building JSON is not part of the client's per-request work. */
  bodies: string[];
}

export interface LoadResult {
  requests: number;
  elapsedMs: number;
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
  const result: LoadResult = { requests: 0, elapsedMs: 0, unexpected: { count: 0 } };
  const bodies = target.bodies.map((b) => Buffer.from(b));
  let next = 0;
  const started = performance.now();
  const deadline = started + options.durationMs;

  const send = (body: Buffer) =>
    new Promise<void>((resolve, reject) => {
      const req = http.request(
        {
          agent,
          host: target.url.hostname,
          port: target.url.port,
          method: "POST",
          path: target.path,
          headers: { ...target.headers, host: target.host, "content-length": body.byteLength },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (chunk: Buffer) => chunks.push(chunk));
          res.on("end", () => {
            result.requests += 1;
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
      await send(bodies[next++ % bodies.length]!);
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
