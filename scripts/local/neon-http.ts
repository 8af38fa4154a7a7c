import { createServer, type IncomingMessage, type Server } from "node:http";
import pg from "pg";

/** The application_name of the stand-in's pooled connections. */
export const NEON_HTTP_APPLICATION_NAME = "layers-neon-http";

export interface NeonHttp {
  port: number;
  /** HTTP requests answered so far (each one query, or one batch run as a transaction). */
  readonly requestsServed: number;
  close(): Promise<void>;
}

interface WireQuery {
  query: string;
  params?: unknown[];
}

// Text in, text out: the driver on the other side parses each value by its type oid, as over the wire.
const RAW = { getTypeParser: () => (value: string) => value };

/**
 * A local stand-in for Neon's SQL-over-HTTP endpoint (what `neon()` of @neondatabase/serverless and its
 * `transaction()` speak): one POST per query, or per batch of queries run as one transaction, with pooled
 * connections to a plain Postgres behind it — as Neon's proxy pools them in production. The request's
 * `Neon-Connection-String` picks the role and database; its host is ignored (this forwards to `target`
 * only), as the WebSocket bridge does. Answers as Neon does: `{ fields, rows, command, rowCount }` with
 * rows as arrays of text, `{ results: [...] }` for a batch, and 400 with the Postgres error fields.
 */
export async function startNeonHttp(target: { host: string; port: number }, port = 0): Promise<NeonHttp> {
  const pools = new Map<string, pg.Pool>();
  const poolFor = (connectionString: string) => {
    const url = new URL(connectionString);
    const key = `${url.username}@${url.pathname}`;
    let pool = pools.get(key);
    if (!pool) {
      pool = new pg.Pool({
        host: target.host,
        port: target.port,
        user: decodeURIComponent(url.username),
        password: decodeURIComponent(url.password) || undefined,
        database: decodeURIComponent(url.pathname.slice(1)),
        max: 20,
        // Named, so a count of the Workers' own connections (pg_stat_activity) can leave these out.
        application_name: NEON_HTTP_APPLICATION_NAME,
      });
      pool.on("error", () => {}); // a dropped idle connection is replaced on the next query
      pools.set(key, pool);
    }
    return pool;
  };
  const run = async (client: pg.PoolClient, q: WireQuery) => {
    const result = await client.query({
      text: q.query,
      values: q.params ?? [],
      rowMode: "array",
      types: RAW,
    });
    return {
      command: result.command,
      rowCount: result.rowCount,
      rowAsArray: true,
      fields: result.fields.map((f) => ({ name: f.name, dataTypeID: f.dataTypeID })),
      rows: result.rows,
    };
  };

  let requestsServed = 0;
  const server: Server = createServer(async (req, res) => {
    requestsServed += 1;
    const reply = (status: number, body: unknown) => {
      res.writeHead(status, { "Content-Type": "application/json" });
      res.end(JSON.stringify(body));
    };
    let client: pg.PoolClient | undefined;
    let inTransaction = false;
    try {
      const connectionString = req.headers["neon-connection-string"];
      if (typeof connectionString !== "string")
        return reply(400, { message: "Neon-Connection-String missing" });
      const body = JSON.parse(await readAll(req)) as WireQuery | { queries: WireQuery[] };
      client = await poolFor(connectionString).connect();
      if (!("queries" in body)) return reply(200, await run(client, body));
      const isolation = req.headers["neon-batch-isolation-level"];
      const readOnly = req.headers["neon-batch-read-only"] === "true";
      await client.query(
        `begin${typeof isolation === "string" && /^[A-Za-z ]+$/.test(isolation) ? ` isolation level ${isolation.replace(/([a-z])([A-Z])/g, "$1 $2")}` : ""}${readOnly ? " read only" : ""}`,
      );
      inTransaction = true;
      const results = [];
      for (const q of body.queries) results.push(await run(client, q));
      await client.query("commit");
      inTransaction = false;
      reply(200, { results });
    } catch (error) {
      if (inTransaction) await client?.query("rollback").catch(() => {});
      const e = error as Record<string, unknown>;
      reply(400, {
        message: String(e.message ?? error),
        ...Object.fromEntries(
          [
            "code",
            "severity",
            "detail",
            "hint",
            "position",
            "schema",
            "table",
            "column",
            "constraint",
            "routine",
          ]
            .filter((k) => e[k] !== undefined)
            .map((k) => [k, e[k]]),
        ),
      });
    } finally {
      client?.release();
    }
  });
  await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
  const address = server.address();
  return {
    port: typeof address === "object" && address ? address.port : port,
    get requestsServed() {
      return requestsServed;
    },
    close: async () => {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      // Idle keep-alive sockets (workerd's) would otherwise hold close() open until they time out.
      server.closeIdleConnections();
      await closed;
      await Promise.all([...pools.values()].map((p) => p.end()));
    },
  };
}

async function readAll(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}
