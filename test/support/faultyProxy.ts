import net from "node:net";

/**
 * How the proxy treats traffic: "pass" forwards it; "down" resets every connection, open or new, as a
 * stopped database server does; "blackhole" holds every byte, like a network that died silently.
 */
export type ProxyMode = "pass" | "down" | "blackhole";

export interface FaultyProxy {
  port: number;
  /** Connections currently open through the proxy. */
  readonly open: number;
  /**
   * "blackhole": connections are still accepted and nothing is ever answered or closed — a database whose
   * network died silently (no RST, no FIN). "pass" forwards again (held connections stay dead, as after a
   * real network partition: their bytes are lost).
   */
  setMode(mode: ProxyMode): void;
  /** Drops every open connection at once (RST), as a database restart or a failover does. */
  cut(): void;
  close(): Promise<void>;
}

/**
 * A TCP proxy in front of Postgres that tests can break on purpose: the failures a WebSocket bridge's own
 * restart cannot show (a connection that stays open and silent, a connection cut mid-query), without
 * stopping the Postgres server other tests share.
 */
export async function startFaultyProxy(target: { host: string; port: number }): Promise<FaultyProxy> {
  let mode: ProxyMode = "pass";
  const pairs = new Set<{ client: net.Socket; server: net.Socket; live: boolean }>();

  const server = net.createServer((client) => {
    if (mode === "down") {
      client.resetAndDestroy();
      return;
    }
    const pair = { client, server: new net.Socket(), live: mode === "pass" };
    pairs.add(pair);
    client.on("error", () => client.destroy());
    client.on("close", () => {
      pairs.delete(pair);
      pair.server.destroy();
    });
    if (!pair.live) return; // accepted, never answered
    const upstream = net.connect(target.port, target.host);
    pair.server = upstream;
    upstream.setNoDelay(true);
    client.setNoDelay(true);
    upstream.on("error", () => upstream.destroy());
    upstream.on("close", () => client.destroy());
    client.on("data", (chunk) => {
      if (pair.live) upstream.write(chunk);
    });
    upstream.on("data", (chunk) => {
      if (pair.live) client.write(chunk);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  if (!address || typeof address === "string") throw new Error("proxy: no port");

  const cut = () => {
    for (const pair of pairs) {
      pair.client.resetAndDestroy();
      pair.server.destroy();
    }
    pairs.clear();
  };
  return {
    port: address.port,
    get open() {
      return pairs.size;
    },
    setMode(next) {
      mode = next;
      if (next === "blackhole") for (const pair of pairs) pair.live = false;
      if (next === "down") cut();
    },
    cut,
    close: async () => {
      for (const pair of pairs) {
        pair.client.destroy();
        pair.server.destroy();
      }
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
