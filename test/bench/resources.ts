/**
 * Everything the bench starts (database, bridges, Miniflare, pools) registers its closer here, so the
 * run ends cleanly whether it finishes, throws, or is interrupted with Ctrl-C: closers run newest first
 * and each runs once.
 */
export class Resources {
  readonly #closers: { name: string; close: () => Promise<unknown> }[] = [];

  /** Registers `close`; the returned function closes this one resource early (and only once). */
  add(name: string, close: () => Promise<unknown>): () => Promise<void> {
    const entry = { name, close };
    this.#closers.push(entry);
    return async () => {
      const index = this.#closers.indexOf(entry);
      if (index === -1) return;
      this.#closers.splice(index, 1);
      await close();
    };
  }

  #closing: Promise<boolean> | undefined;

  /**
   * Closes everything still open; failures are reported, not thrown, so one cannot strand the rest.
   * A signal and the normal end of the run may both ask: they share one pass and wait for the same end.
   */
  closeAll(): Promise<boolean> {
    this.#closing ??= this.#closeAll();
    return this.#closing;
  }

  async #closeAll(): Promise<boolean> {
    let ok = true;
    for (let entry = this.#closers.pop(); entry; entry = this.#closers.pop()) {
      try {
        await entry.close();
      } catch (error) {
        ok = false;
        console.error(`bench: closing ${entry.name} failed:`, error);
      }
    }
    return ok;
  }
}

/**
 * Runs `create` and removes any SIGINT/SIGTERM listeners it added. Miniflare installs one that calls
 * process.exit at once, which would cut off our asynchronous cleanup (the bench database would be left
 * behind); Resources already disposes Miniflare, so run.ts's own handler is enough.
 */
export function withoutForeignSignalHandlers<T>(create: () => T): T {
  const signals = ["SIGINT", "SIGTERM"] as const;
  const before = new Map(signals.map((signal) => [signal, new Set(process.listeners(signal))]));
  const created = create();
  for (const signal of signals) {
    for (const listener of process.listeners(signal)) {
      if (!before.get(signal)?.has(listener)) process.removeListener(signal, listener);
    }
  }
  return created;
}
