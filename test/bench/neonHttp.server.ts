// The SQL-over-HTTP stand-in (scripts/local/neon-http.ts) in its own process for (d), as Neon's endpoint is
// its own service: the load generator and it do not share an event loop. Prints its port on stdout.
//   TARGET_HOST, TARGET_PORT: the Postgres it forwards to.
import { startNeonHttp } from "../../scripts/local/neon-http";

const server = await startNeonHttp({
  host: process.env.TARGET_HOST ?? "127.0.0.1",
  port: Number(process.env.TARGET_PORT ?? 5432),
});
process.stdout.write(`${server.port}\n`);
process.on("SIGTERM", () => void server.close().finally(() => process.exit(0)));
