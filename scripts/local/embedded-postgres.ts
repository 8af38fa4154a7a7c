import { PGlite } from "@electric-sql/pglite";
import { PGLiteSocketServer } from "@electric-sql/pglite-socket";

export interface EmbeddedPostgres {
  host: string;
  port: number;
  /** Connection string for the owner (schema, seed); the app role's string differs only in the user. */
  url: string;
  stop(): Promise<void>;
}

/**
 * PGlite (Postgres compiled to WASM) served over the Postgres wire protocol, for a machine with no
 * Postgres server: `npm run dev` keeps its data under `.data/pg`, tests use memory. One session is
 * shared by every connection, so nothing may rely on session-level state (we use transaction-local
 * settings only).
 */
export async function startEmbeddedPostgres(
  options: { dataDir?: string; port?: number } = {},
): Promise<EmbeddedPostgres> {
  const db = await PGlite.create(options.dataDir ?? "memory://");
  const host = "127.0.0.1";
  const port = options.port ?? (await freePort());
  const server = new PGLiteSocketServer({ db, host, port, maxConnections: 100 });
  await server.start();
  return {
    host,
    port,
    url: `postgres://postgres@${host}:${port}/postgres`,
    stop: async () => {
      await server.stop();
      await db.close();
    },
  };
}

export async function freePort(): Promise<number> {
  const net = await import("node:net");
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const address = srv.address();
      const port = typeof address === "object" && address ? address.port : 0;
      srv.close(() => resolve(port));
    });
  });
}
