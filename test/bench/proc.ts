import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";

// CPU time of the workerd processes Miniflare started (our children), from /proc. Requests per second
// on a shared machine move with the neighbours' load; CPU milliseconds per request move far less, so
// they say where the time goes. Linux only: elsewhere the figure is simply not reported.

let ticksPerSecond: number | undefined;

function clockTicks(): number {
  if (ticksPerSecond === undefined) {
    try {
      ticksPerSecond = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;
    } catch {
      ticksPerSecond = 100;
    }
  }
  return ticksPerSecond;
}

/** Total user+system CPU milliseconds of this process's workerd children, or undefined without /proc. */
export function workerdCpuMs(): number | undefined {
  let pids: string[];
  try {
    pids = readdirSync("/proc").filter((name) => /^\d+$/.test(name));
  } catch {
    return undefined;
  }
  let ticks = 0;
  let found = false;
  for (const pid of pids) {
    try {
      if (readFileSync(`/proc/${pid}/comm`, "utf8").trim() !== "workerd") continue;
      // Fields after "(comm) ": state ppid … utime (14th overall) stime (15th overall).
      const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.split(" ") ?? [];
      if (Number(fields[1]) !== process.pid) continue;
      ticks += Number(fields[11]) + Number(fields[12]);
      found = true;
    } catch {
      // The process ended between listing and reading: it is not ours to count.
    }
  }
  return found ? (ticks * 1_000) / clockTicks() : undefined;
}

/** Total user+system CPU milliseconds of one process (by pid), or undefined without /proc. */
export function processCpuMs(pid: number): number | undefined {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.split(" ") ?? [];
    return ((Number(fields[11]) + Number(fields[12])) * 1_000) / clockTicks();
  } catch {
    return undefined;
  }
}
