import { createServer, type Server } from "node:http";
import net from "node:net";
import { WebSocketServer } from "ws";

export interface WsBridge {
  port: number;
  /** Database connections opened through the bridge so far: tests count database work with it. */
  readonly connectionsOpened: number;
  /** Stops accepting and drops every open connection, as a database outage would. */
  close(): Promise<void>;
}

/**
 * The WebSocket-to-TCP bridge that lets the Neon serverless driver (which speaks Postgres over a
 * WebSocket, as Neon's proxy expects) reach a plain local Postgres. Each WebSocket becomes one TCP
 * connection to `target`; the driver's `?address=` is ignored so the bridge cannot be pointed elsewhere.
 */
/** The frontend Terminate message: 'X' followed by the length 4. */
function endsWithTerminate(data: Buffer): boolean {
  const n = data.length;
  return n >= 5 && data[n - 5] === 0x58 && data.readInt32BE(n - 4) === 4;
}

export async function startWsBridge(target: { host: string; port: number }, port = 0): Promise<WsBridge> {
  const http: Server = createServer((_req, res) => res.writeHead(426).end("WebSocket only"));
  const wss = new WebSocketServer({ server: http });
  const sockets = new Set<net.Socket>();
  let connectionsOpened = 0;

  wss.on("connection", (ws) => {
    connectionsOpened += 1;
    const tcp = net.connect(target.port, target.host);
    sockets.add(tcp);
    tcp.setNoDelay(true);
    const pending: Buffer[] = [];
    tcp.on("connect", () => {
      for (const chunk of pending.splice(0)) tcp.write(chunk);
    });
    ws.on("message", (data: Buffer) => {
      if (tcp.connecting) pending.push(data);
      else tcp.write(data);
      // Postgres closes the connection when the client sends Terminate; the embedded PGlite server does
      // not, so the bridge does it for both. Otherwise the driver's WebSocket stays open and workerd keeps
      // the event (a queue batch) alive, and the queue never delivers the next batch.
      if (endsWithTerminate(data)) {
        tcp.end();
        ws.close(1000);
      }
    });
    tcp.on("data", (chunk) => ws.send(chunk));
    // Close each side gracefully when the other closes: a WebSocket left without its close handshake keeps
    // a workerd event (e.g. a queue batch) open, and the queue then never delivers the next batch.
    tcp.on("close", () => {
      sockets.delete(tcp);
      if (ws.readyState === ws.OPEN) ws.close(1000);
    });
    tcp.on("error", () => tcp.destroy());
    ws.on("close", () => tcp.end());
    ws.on("error", () => tcp.destroy());
  });

  await new Promise<void>((resolve) => http.listen(port, "127.0.0.1", resolve));
  const address = http.address();
  const boundPort = typeof address === "object" && address ? address.port : port;
  return {
    port: boundPort,
    get connectionsOpened() {
      return connectionsOpened;
    },
    close: async () => {
      for (const socket of sockets) socket.destroy();
      for (const client of wss.clients) client.terminate();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
      await new Promise<void>((resolve) => http.close(() => resolve()));
    },
  };
}
