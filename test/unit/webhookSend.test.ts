import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { Webhook } from "standardwebhooks";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RESPONSE_EXCERPT_BYTES, sendWebhook } from "../../functions/webhooks/send";
import { generateWebhookSecret } from "../../functions/webhooks/sign";

// A real HTTP receiver on 127.0.0.1; each path answers differently. What it saw is recorded per path.
const seen = new Map<string, number>();
let bytesWritten = 0;
let server: Server;
let base: string;
const secret = generateWebhookSecret();

function handle(req: IncomingMessage, res: ServerResponse) {
  const path = req.url ?? "/";
  seen.set(path, (seen.get(path) ?? 0) + 1);
  let body = "";
  req.on("data", (c: Buffer) => {
    body += c.toString("utf8");
  });
  req.on("end", () => {
    if (path === "/ok") {
      try {
        new Webhook(secret).verify(body, req.headers as Record<string, string>);
        res.writeHead(200, { "content-type": "text/plain" }).end("verified");
      } catch {
        res.writeHead(400).end("bad signature");
      }
    } else if (path === "/redirect") {
      res.writeHead(302, { location: `${base}/target` }).end();
    } else if (path === "/huge") {
      // Streams 50 MB unless the client stops reading.
      res.writeHead(200, { "content-type": "text/plain" });
      const chunk = Buffer.alloc(64 * 1024, "x");
      let sent = 0;
      const pump = () => {
        while (sent < 800) {
          sent += 1;
          bytesWritten += chunk.length;
          if (!res.write(chunk)) return void res.once("drain", pump);
        }
        res.end();
      };
      res.on("close", () => {
        sent = 800;
      });
      pump();
    } else if (path === "/slow") {
      setTimeout(() => res.writeHead(200).end("late"), 3_000);
    } else if (path === "/echo-secret") {
      res.writeHead(500).end(`oops ${secret} for someone@example.com`);
    } else {
      res.writeHead(410).end("gone");
    }
  });
}

beforeAll(async () => {
  server = createServer(handle);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

const send = (path: string, extra: Partial<Parameters<typeof sendWebhook>[0]> = {}) =>
  sendWebhook({
    url: `${base}${path}`,
    secrets: [secret],
    messageId: "msg_send",
    timestamp: new Date(),
    body: JSON.stringify({ type: "webhook.test" }),
    timeoutMs: 2_000,
    allowLocalHttp: true,
    ...extra,
  });

describe("sendWebhook", () => {
  it("posts a body the standardwebhooks library verifies, 2xx is success", async () => {
    const result = await send("/ok");
    expect(result).toMatchObject({ statusCode: 200, errorCode: null, responseExcerpt: "verified" });
  });

  it("does not follow a redirect: the 3xx is the failed attempt's answer", async () => {
    const result = await send("/redirect");
    expect(result).toMatchObject({ statusCode: 302, errorCode: "redirect_not_followed" });
    expect(seen.get("/target")).toBeUndefined();
  });

  it("reads a large answer only up to the cap", async () => {
    const result = await send("/huge");
    expect(result.statusCode).toBe(200);
    expect(new TextEncoder().encode(result.responseExcerpt ?? "").byteLength).toBe(RESPONSE_EXCERPT_BYTES);
    // The server wrote far less than the 50 MB it would have: the stream was cancelled after the cap.
    await new Promise((r) => setTimeout(r, 200));
    expect(bytesWritten).toBeLessThan(50 * 1024 * 1024);
  });

  it("gives up at the deadline", async () => {
    const result = await send("/slow", { timeoutMs: 300 });
    expect(result).toMatchObject({ statusCode: null, errorCode: "timeout", responseExcerpt: null });
  });

  it("cuts the signing secret and personal data out of the kept answer", async () => {
    const result = await send("/echo-secret");
    expect(result).toMatchObject({ statusCode: 500, errorCode: "http_status" });
    expect(result.responseExcerpt).not.toContain(secret);
    expect(result.responseExcerpt).not.toContain(secret.slice(6));
    expect(result.responseExcerpt).not.toContain("someone@example.com");
    expect(result.responseExcerpt).toContain("[redacted]");
  });

  it("keeps no start of a secret that the read cap cut, even when redaction pulls it into the kept bytes", async () => {
    // The secret begins near the end of what is read, so only its start is read; a long bearer token
    // before it is redacted to a few characters, which moves that start into the first 256 bytes.
    const head = `auth Bearer ${"A".repeat(200)} pad `;
    const answer = `${head}${"p".repeat(360 - head.length)} ${secret} tail`;
    const result = await send("/any", { fetch: async () => new Response(answer, { status: 500 }) });
    expect(result.responseExcerpt).toContain("pad ppp");
    expect(result.responseExcerpt).not.toContain(secret.slice(0, 12));
    expect(result.responseExcerpt).not.toContain(secret.slice(6, 18));
  });

  it("never calls a URL the SSRF guard refuses", async () => {
    let called = 0;
    const result = await send("/ok", {
      url: "https://169.254.169.254/latest/meta-data/",
      fetch: async () => {
        called += 1;
        return new Response("no");
      },
    });
    expect(result).toMatchObject({ statusCode: null, errorCode: "url_refused" });
    expect(called).toBe(0);
    const inProd = await send("/ok", { allowLocalHttp: false });
    expect(inProd.errorCode).toBe("url_refused");
    expect(seen.get("/ok")).toBe(1);
  });

  it("reports a refused connection without throwing", async () => {
    const result = await send("/ok", { url: "http://127.0.0.1:1/hook" });
    expect(result).toMatchObject({ statusCode: null, errorCode: "connection_failed" });
  });
});
