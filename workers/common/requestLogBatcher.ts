/**
 * Request-log rows of one isolate, written in batches: every API request logs one row, and writing each in
 * its own round trip (an HTTP call, a statement, a commit) cost a read as much database work as its answer.
 * The first row added while no write is due schedules one `delayMs` later, and that request's `waitUntil`
 * carries it: the rows added meanwhile by other requests ride along, and those requests wait for nothing
 * (no request awaits a promise of another request's). A row waits at most `delayMs` plus one write; a batch
 * is capped at `maxRows` (a full batch is written at once). Losing rows (an isolate evicted while a write
 * is due, a failed write) never fails a request, as before: the log is metadata, written after the answer.
 */
export class RequestLogBatcher<E> {
  #rows: E[] = [];
  #due = false;

  constructor(
    private readonly write: (rows: E[]) => Promise<void>,
    private readonly options: { delayMs: number; maxRows: number },
  ) {}

  /** Adds a row; the promise of the write it schedules, or undefined when a write already due takes it. */
  add(row: E): Promise<void> | undefined {
    this.#rows.push(row);
    if (this.#rows.length >= this.options.maxRows) return this.#flush();
    if (this.#due) return undefined;
    this.#due = true;
    return new Promise<void>((resolve) => setTimeout(resolve, this.options.delayMs)).then(() =>
      this.#flush(),
    );
  }

  #flush(): Promise<void> {
    this.#due = false;
    const rows = this.#rows;
    this.#rows = [];
    return rows.length === 0 ? Promise.resolve() : this.write(rows);
  }
}
