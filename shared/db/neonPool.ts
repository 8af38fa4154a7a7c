import { Client, type ClientConfig, neonConfig, Pool, type PoolConfig } from "@neondatabase/serverless";

/**
 * @neondatabase/serverless 1.2.0 bundles an older node-postgres whose `Client.end(callback)` waits for
 * the connection's "end" event even when that event has already fired (the socket closed under it). The
 * pool removes a broken connection with `client.end(() => serve the next waiter)`, so once the pool's
 * connections die together (a database restart, a bridge or network outage) that callback never runs and
 * every query waiting for a connection waits forever: the queue invocation hangs with nothing left to wake
 * it. node-postgres fixed this upstream (brianc/node-postgres#2717: `end()` returns at once when the
 * connection has already ended); this is the same fix on the driver's client.
 */
class NeonClient extends Client {
  #connectionEnded = false;

  constructor(config?: string | ClientConfig) {
    super(config);
    this.connection.once("end", () => {
      this.#connectionEnded = true;
    });
  }

  override end(): Promise<void>;
  override end(callback: (err: Error) => void): void;
  override end(callback?: (err: Error) => void): Promise<void> | undefined {
    if (this.#connectionEnded) {
      if (!callback) return Promise.resolve();
      (callback as () => void)();
      return;
    }
    if (!callback) return super.end();
    super.end(callback);
  }

  /** Starts closing the socket whatever state the connection is in (connecting, waiting on a query). */
  closeSocket(): void {
    try {
      this.connection.stream.destroy();
    } catch {
      // A socket that never opened has nothing to close.
    }
  }
}

/** The driver's Pool, with the client above and a way to close the sockets `end()` would wait on. */
export class NeonPool extends Pool {
  readonly #open = new Set<NeonClient>();

  constructor(config: PoolConfig) {
    super(config);
    const open = this.#open;
    this.Client = class extends NeonClient {
      constructor(clientConfig?: string | ClientConfig) {
        super(clientConfig);
        open.add(this);
        this.connection.once("end", () => open.delete(this));
      }
    };
  }

  /**
   * `end()` waits for every connection still checked out or still connecting, and one whose socket died
   * silently never comes back. An open WebSocket also keeps workerd's event alive (a queue batch whose
   * outcome is then never reported, so its messages are neither acked nor retried): this closes them all.
   */
  closeSockets(): void {
    for (const client of this.#open) client.closeSocket();
  }
}

/**
 * The driver coalesces writes and sends them from a timer; when the socket closed in between (the
 * database went away, or the pool is closing this connection), workerd's `send()` throws "Can't call
 * WebSocket send() after close()" inside that timer: an uncaught exception per lost connection, which
 * rejects nothing (the socket's close event is what fails the query) and only floods the logs during an
 * outage. Bytes for a closing socket can never be delivered, so they are dropped here.
 */
function closedSocketsDropWrites(): void {
  if (typeof WebSocket === "undefined" || neonConfig.webSocketConstructor) return;
  class DropsWritesAfterClose extends WebSocket {
    override send(data: string | ArrayBuffer | ArrayBufferView): void {
      try {
        super.send(data);
      } catch (error) {
        // workerd's own words for "this socket is closed on our side" (by us, or answering the peer's
        // close); readyState can still read OPEN at that moment. Anything else is a real failure.
        if (error instanceof TypeError && error.message.includes("send() after close()")) return;
        throw error;
      }
    }
  }
  neonConfig.webSocketConstructor = DropsWritesAfterClose;
}

export interface NeonPoolConfig {
  connectionString: string;
  /** "127.0.0.1:5433/v1": the local WebSocket-to-TCP bridge (scripts/local/ws-bridge.ts). */
  wsProxy?: string | undefined;
  max: number;
}

export function createNeonPool(config: NeonPoolConfig): NeonPool {
  if (config.wsProxy) {
    const proxy = config.wsProxy;
    neonConfig.wsProxy = (host, port) => `${proxy}?address=${host}:${port}`;
    neonConfig.useSecureWebSocket = false;
    neonConfig.pipelineTLS = false;
    neonConfig.pipelineConnect = false;
  }
  closedSocketsDropWrites();
  return new NeonPool({ connectionString: config.connectionString, max: config.max });
}
