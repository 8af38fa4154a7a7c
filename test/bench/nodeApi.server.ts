// The baseline a partner would pick instead of Workers, for (d): a long-running Node process holding a pg
// connection pool, answering GET /v1/projects with the same steps the API Worker runs — the key looked up
// through resolve_api_key (cached per process as the Worker caches it), the page read by listProjects in a
// tenant transaction as the app role, the request log written after the answer in batches (the Worker's
// RequestLogBatcher, same delay). Node's http module, no
// framework: the cheapest honest server. Run by test/bench/api.ts as a child process, so the load
// generator does not share its event loop; prints its port on stdout.
//   DATABASE_URL (the layers_api role) · API_KEY_CACHE_TTL_SECONDS (default 5)
import { createServer } from "node:http";
import { type ApiKeyIdentity, resolveApiKey } from "../../functions/apiKeys/store";
import { listProjects } from "../../functions/projects/store";
import { projectJson } from "../../functions/projects/verbs";
import { type RequestLogEntry, writeRequestLogs } from "../../functions/requestLogs/requestLogs";
import { createNodeDb } from "../../scripts/local/node-db";
import { withTenant } from "../../shared/db";
import { sha256Hex } from "../../shared/hash";
import { newId } from "../../shared/ids";
import { KeyLookupCache } from "../../workers/common/keyLookupCache";
import { RequestLogBatcher } from "../../workers/common/requestLogBatcher";

const databaseUrl = process.env.DATABASE_URL;
if (!databaseUrl) throw new Error("DATABASE_URL is required");
const ttlMs = Number(process.env.API_KEY_CACHE_TTL_SECONDS ?? 5) * 1000;
const db = createNodeDb(databaseUrl, 20);
const keys = new KeyLookupCache<ApiKeyIdentity>({ knownTtlMs: ttlMs, unknownTtlMs: ttlMs });
const requestLogs = new RequestLogBatcher<RequestLogEntry>((rows) => writeRequestLogs(db, rows), {
  delayMs: 20,
  maxRows: 200,
});

const send = (res: import("node:http").ServerResponse, status: number, body: unknown) => {
  const text = JSON.stringify(body);
  res.writeHead(status, { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(text) });
  res.end(text);
};

const server = createServer(async (req, res) => {
  const started = performance.now();
  const now = new Date();
  try {
    if (req.method !== "GET" || req.url !== "/v1/projects") return send(res, 404, { error: "not_found" });
    const secret = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? "")?.[1];
    const identity = secret
      ? await keys.lookup(await sha256Hex(secret), Date.now(), () => resolveApiKey(db, secret, now))
      : null;
    if (!identity) return send(res, 401, { error: "unauthorized" });
    const page = await withTenant(db, identity.orgId, (tx) =>
      listProjects(tx, { limit: 20, onlyId: identity.projectId }),
    );
    send(res, 200, {
      object: "list",
      data: page.data.map(projectJson),
      hasMore: page.hasMore,
      nextCursor: page.hasMore ? (page.data.at(-1)?.id ?? null) : null,
    });
    void requestLogs
      .add({
        requestId: newId("req"),
        clientRequestId: null,
        orgId: identity.orgId,
        apiKeyId: identity.keyId,
        method: "GET",
        route: "/v1/projects",
        status: 200,
        latencyMs: performance.now() - started,
        occurredAt: now,
      })
      ?.catch(() => {});
  } catch (error) {
    send(res, 500, { error: String(error) });
  }
});

server.keepAliveTimeout = 60_000;
server.listen(0, "127.0.0.1", () => {
  const address = server.address();
  process.stdout.write(`${typeof address === "object" && address ? address.port : 0}\n`);
});
process.on("SIGTERM", () => {
  server.close();
  void db.destroy().finally(() => process.exit(0));
});
