import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { Webhook } from "standardwebhooks";

// A partner's webhook receiver for tests: a real HTTP server on 127.0.0.1 that checks every request with the
// published `standardwebhooks` library (not our code) against the secrets the test says the partner holds.
// Each path is one endpoint; the test decides per path how it answers.

export interface ReceivedWebhook {
  path: string;
  id: string;
  timestamp: string;
  signatures: string[];
  headers: Record<string, string>;
  body: string;
  /** Per secret the partner holds for this path: did the library verify the request with it? */
  verifiedWith: Record<string, boolean>;
  /** What the receiver answered (null: it never answered, the request hung up to the sender's deadline). */
  answered: number | null;
}

/** How a path answers; `n` counts the requests to that path so far (1-based). */
export type Behaviour = (
  n: number,
  received: ReceivedWebhook,
) =>
  | { status: number; body?: string; headers?: Record<string, string> }
  | { hang: true }
  | { stream: { status: number; bytes: number } };

export interface Receiver {
  url(path: string): string;
  /** The secrets the partner holds for a path (each is tried on its own). */
  secrets: Map<string, string[]>;
  behave(path: string, behaviour: Behaviour): void;
  received(path?: string): ReceivedWebhook[];
  /** Bytes a streaming answer actually wrote before the client stopped reading. */
  streamedBytes(path: string): number;
  close(): Promise<void>;
}

export function verifies(secret: string, r: Pick<ReceivedWebhook, "body" | "headers">): boolean {
  try {
    new Webhook(secret).verify(r.body, r.headers);
    return true;
  } catch {
    return false;
  }
}

export async function startReceiver(): Promise<Receiver> {
  const behaviours = new Map<string, Behaviour>();
  const secrets = new Map<string, string[]>();
  const log: ReceivedWebhook[] = [];
  const counts = new Map<string, number>();
  const streamed = new Map<string, number>();
  const hanging = new Set<ServerResponse>();

  const handle = (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const path = (req.url ?? "/").split("?")[0] ?? "/";
      const headers = Object.fromEntries(
        Object.entries(req.headers).map(([k, v]) => [k, Array.isArray(v) ? v.join(",") : (v ?? "")]),
      );
      const body = Buffer.concat(chunks).toString("utf8");
      const received: ReceivedWebhook = {
        path,
        id: headers["webhook-id"] ?? "",
        timestamp: headers["webhook-timestamp"] ?? "",
        signatures: (headers["webhook-signature"] ?? "").split(" ").filter(Boolean),
        headers,
        body,
        verifiedWith: Object.fromEntries(
          (secrets.get(path) ?? []).map((s) => [s, verifies(s, { body, headers })]),
        ),
        answered: null,
      };
      log.push(received);
      const n = (counts.get(path) ?? 0) + 1;
      counts.set(path, n);
      const behaviour: Behaviour = behaviours.get(path) ?? (() => ({ status: 200, body: "ok" }));
      const answer = behaviour(n, received);
      if ("hang" in answer) {
        hanging.add(res);
        res.on("close", () => hanging.delete(res));
        return;
      }
      if ("stream" in answer) {
        received.answered = answer.stream.status;
        res.writeHead(answer.stream.status, { "content-type": "text/plain" });
        const chunk = Buffer.alloc(64 * 1024, "y");
        let written = 0;
        let stopped = false;
        res.on("close", () => {
          stopped = true;
        });
        const pump = () => {
          while (!stopped && written < answer.stream.bytes) {
            written += chunk.length;
            streamed.set(path, (streamed.get(path) ?? 0) + chunk.length);
            if (!res.write(chunk)) return void res.once("drain", pump);
          }
          res.end();
        };
        pump();
        return;
      }
      received.answered = answer.status;
      res
        .writeHead(answer.status, { "content-type": "text/plain", ...answer.headers })
        .end(answer.body ?? "");
    });
  };

  const server: Server = createServer(handle);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url: (path) => `${base}${path}`,
    secrets,
    behave: (path, behaviour) => behaviours.set(path, behaviour),
    received: (path) => (path ? log.filter((r) => r.path === path) : [...log]),
    streamedBytes: (path) => streamed.get(path) ?? 0,
    async close() {
      for (const res of hanging) res.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
