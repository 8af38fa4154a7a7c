import type { ApiKeyIdentity } from "../../functions/apiKeys/store";
import type { RequestLogEntry } from "../../functions/requestLogs/requestLogs";
import type { Db } from "../../shared/db";
import type { HttpReads } from "../../shared/db/httpReads";
import type { Logger } from "../../shared/logger";
import type { RequestLogBatcher } from "../common/requestLogBatcher";
import type { ApiVars } from "./env";

/** What every request carries through the middleware chain (unkey's HonoEnv pattern). */
export type ApiEnv = {
  Bindings: ApiBindings;
  Variables: {
    /** Generated for every request: the request-log key, X-Request-Id and error bodies. */
    requestId: string;
    /** The caller's X-Request-Id when it has the allowed shape, kept beside ours; null otherwise. */
    clientRequestId: string | null;
    /** This request's logger: every line carries requestId, and orgId and route once the key is known. */
    log: Logger;
    vars: ApiVars;
    /** The request's clock: wall time, or X-Layers-Test-Now where tests may set it. */
    now: Date;
    /** The pooled connection (WebSocket): changes, and reads that stream. Opened on its first query. */
    db: Db;
    /** Reads over SQL-over-HTTP, one round trip per query, each in its own tenant transaction. */
    reads: HttpReads;
    /** This isolate's request-log rows, written in batches after the answers (workers/common/requestLogBatcher.ts). */
    requestLogs: RequestLogBatcher<RequestLogEntry>;
    auth: ApiKeyIdentity;
    /** Work to finish after the response, before the request's connections close. */
    defer: (task: Promise<unknown>) => void;
  };
};
