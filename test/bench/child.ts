import { spawn } from "node:child_process";
import path from "node:path";
import { ROOT } from "../../scripts/local/bundle";

/**
 * A server of the bench's in its own Node process (test/bench/*.server.ts), so the load it answers and the
 * load generator do not share an event loop. The script prints its port on stdout.
 */
export async function startChild(
  script: string,
  env: Record<string, string>,
): Promise<{ port: number; pid: number; stop(): Promise<void> }> {
  const child = spawn(process.execPath, ["--import", "tsx", path.join(ROOT, script)], {
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "inherit"],
  });
  const port = await new Promise<number>((resolve, reject) => {
    child.once("exit", (code) => reject(new Error(`${script} exited (${code})`)));
    child.stdout?.once("data", (chunk) => resolve(Number(String(chunk).trim())));
  });
  return {
    port,
    pid: child.pid ?? 0,
    stop: async () => {
      if (child.exitCode !== null) return;
      const exited = new Promise((resolve) => child.once("exit", resolve));
      child.kill("SIGTERM");
      await exited;
    },
  };
}
