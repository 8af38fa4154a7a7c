import { writeFileSync } from "node:fs";
import WebSocket from "ws";

/**
 * A V8 CPU profile of a Worker in workerd, through Miniflare's inspector (`inspectorPort`): started by this
 * call, stopped and written to `file` (a `.cpuprofile` for Chrome DevTools or speedscope) by the function it
 * returns. Sampling every 100 µs: a request of a millisecond shows up as ten samples.
 */
export async function startWorkerProfile(inspectorPort: number, worker: string, file: string) {
  const targets = (await (await fetch(`http://127.0.0.1:${inspectorPort}/json`)).json()) as {
    webSocketDebuggerUrl: string;
  }[];
  const target = targets.find((t) => t.webSocketDebuggerUrl.endsWith(`:${worker}`));
  if (!target) throw new Error(`no inspector target for Worker ${worker}`);
  const ws = new WebSocket(target.webSocketDebuggerUrl);
  await new Promise((resolve, reject) => ws.once("open", resolve).once("error", reject));
  const waiting = new Map<number, (result: unknown) => void>();
  ws.on("message", (data) => {
    const message = JSON.parse(String(data)) as { id?: number; result?: unknown };
    if (message.id !== undefined) waiting.get(message.id)?.(message.result);
  });
  let lastId = 0;
  const send = (method: string, params: object = {}) =>
    new Promise<unknown>((resolve) => {
      lastId += 1;
      waiting.set(lastId, resolve);
      ws.send(JSON.stringify({ id: lastId, method, params }));
    });
  await send("Profiler.enable");
  await send("Profiler.setSamplingInterval", { interval: 100 });
  await send("Profiler.start");
  return async () => {
    const { profile } = (await send("Profiler.stop")) as { profile: unknown };
    writeFileSync(file, JSON.stringify(profile));
    ws.close();
  };
}
