import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { chmod, mkdtemp, rm, writeFile } from "node:fs/promises";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { freePort } from "./embedded-postgres";

export interface PgBouncer {
  port: number;
  stop(): Promise<void>;
}

const BINARIES = ["/usr/sbin/pgbouncer", "/usr/bin/pgbouncer"];

/** The PgBouncer binary (Debian package `pgbouncer`), or undefined when it is not installed. */
export function findPgBouncer(): string | undefined {
  for (const candidate of BINARIES) {
    try {
      execFileSync(candidate, ["--version"], { stdio: "ignore" });
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

/**
 * A local PgBouncer in transaction-pooling mode in front of a Postgres server: what Neon's pooled
 * endpoint (the `-pooler` host) is in production. A Worker cannot keep a connection between requests,
 * so each request connects anew; through a pooler that costs about a millisecond, against ~20 ms for a
 * fresh Postgres backend on these machines. Our code is pooler-safe: every setting is transaction-local
 * (`set_config(…, true)`) and statements are unnamed.
 */
export async function startPgBouncer(
  binary: string,
  target: { host: string; port: number },
  roles: string[],
): Promise<PgBouncer> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "layers-pgbouncer-"));
  // PgBouncer will not run as root; it then drops to `nobody`, which must read its files.
  await chmod(dir, 0o755);
  const port = await freePort();
  const ini = path.join(dir, "pgbouncer.ini");
  const users = path.join(dir, "users.txt");
  await writeFile(users, roles.map((r) => `"${r}" ""`).join("\n"), { mode: 0o644 });
  await writeFile(
    ini,
    [
      "[databases]",
      `* = host=${target.host} port=${target.port}`,
      "[pgbouncer]",
      "listen_addr = 127.0.0.1",
      `listen_port = ${port}`,
      "unix_socket_dir =",
      "auth_type = trust",
      `auth_file = ${users}`,
      "pool_mode = transaction",
      "max_client_conn = 2000",
      "default_pool_size = 20",
      // Sent by drivers at startup; harmless under transaction pooling.
      "ignore_startup_parameters = extra_float_digits,options",
      "",
    ].join("\n"),
    { mode: 0o644 },
  );
  const asRoot = process.getuid?.() === 0;
  const child: ChildProcess = spawn(binary, [...(asRoot ? ["-u", "nobody"] : []), ini], {
    stdio: ["ignore", "ignore", "pipe"],
  });
  let stderr = "";
  child.stderr?.on("data", (chunk) => {
    stderr += String(chunk);
  });
  await waitForPort(port, child, () => stderr);
  return {
    port,
    stop: async () => {
      if (child.exitCode === null) {
        const exited = new Promise((resolve) => child.once("exit", resolve));
        child.kill("SIGTERM");
        await exited;
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}

async function waitForPort(port: number, child: ChildProcess, log: () => string): Promise<void> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`pgbouncer exited: ${log()}`);
    const open = await new Promise<boolean>((resolve) => {
      const socket = net.connect(port, "127.0.0.1");
      socket.once("connect", () => {
        socket.destroy();
        resolve(true);
      });
      socket.once("error", () => resolve(false));
    });
    if (open) return;
    if (Date.now() > deadline) throw new Error(`pgbouncer did not listen on ${port}: ${log()}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
