import type { PoolClient } from "@neondatabase/serverless";
import type { PostgresCursor, PostgresPool, PostgresPoolClient, PostgresQueryResult } from "kysely";
import type { NeonPool } from "./neonPool";

/** A database step (getting a connection, or one query) that did not finish within its deadline. */
export class DatabaseTimeoutError extends Error {
  override readonly name = "DatabaseTimeoutError";
}

/** `promise`, or a DatabaseTimeoutError after `ms` — whichever settles first. The timer never outlives it. */
export function withDeadline<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new DatabaseTimeoutError(`${what} took longer than ${ms} ms`)), ms);
  });
  // Always set by now (the executor runs at once); workerd's clearTimeout does not accept undefined.
  return Promise.race([promise, expired]).finally(() => {
    if (timer !== undefined) clearTimeout(timer);
  });
}

export interface PoolDeadlines {
  /** Getting a connection, and each query; unset: no deadline. */
  stepMs?: number | undefined;
  /** Closing the pool: after this, sockets still open are closed without waiting for their queries. */
  closeMs: number;
}

/**
 * The pool Kysely draws from, with deadlines. A socket that died without a close (a network partition, a
 * paused server) never answers, and neither the driver nor the pool ever gives up on it: a query on it, a
 * wait for a connection behind it, or closing the pool would hold a queue invocation forever. Here such a
 * step fails after `stepMs`, and the connection it ran on is handed back as broken, so the pool drops it
 * instead of lending it out again (Kysely releases connections without saying whether they failed).
 */
export function poolWithDeadlines(pool: NeonPool, deadlines: PoolDeadlines): PostgresPool {
  const { stepMs, closeMs } = deadlines;
  return {
    async connect() {
      if (!stepMs) return pool.connect() as Promise<PostgresPoolClient>;
      const pending = pool.connect();
      try {
        return new DeadlineClient(
          await withDeadline(pending, stepMs, "getting a database connection"),
          stepMs,
        );
      } catch (error) {
        // A connection that arrives after its deadline is dropped, never left checked out.
        if (error instanceof DatabaseTimeoutError) {
          pending.then(
            (late) => late.release(error),
            () => {},
          );
        }
        throw error;
      }
    },
    async end() {
      try {
        await withDeadline(pool.end(), closeMs, "closing the database connections");
      } catch (error) {
        if (!(error instanceof DatabaseTimeoutError)) throw error;
        pool.closeSockets();
      }
    },
  };
}

class DeadlineClient implements PostgresPoolClient {
  /** Set once a query on this connection timed out: its socket is presumed dead. */
  #broken: DatabaseTimeoutError | undefined;

  constructor(
    private readonly client: PoolClient,
    private readonly ms: number,
  ) {}

  query<R>(sql: string, parameters: ReadonlyArray<unknown>): Promise<PostgresQueryResult<R>>;
  query<R>(cursor: PostgresCursor<R>): PostgresCursor<R>;
  query<R>(
    sql: string | PostgresCursor<R>,
    parameters?: ReadonlyArray<unknown>,
  ): Promise<PostgresQueryResult<R>> | PostgresCursor<R> {
    if (typeof sql !== "string") throw new TypeError("cursors are not configured for this database handle");
    // The rollback Kysely sends after a failed statement would wait on the same dead socket: fail it at once.
    if (this.#broken) return Promise.reject(this.#broken);
    // The driver's own result object, which Kysely reads when handed the pool directly.
    const running = this.client.query(sql, [...(parameters ?? [])]) as unknown as Promise<
      PostgresQueryResult<R>
    >;
    return withDeadline(running, this.ms, "a database query").catch((error: unknown) => {
      if (error instanceof DatabaseTimeoutError) this.#broken = error;
      throw error;
    });
  }

  release(): void {
    this.client.release(this.#broken);
  }
}
