import { type Db, withTenant } from "../../shared/db";
import { type EventCursor, type EventFilter, userEventsPage } from "./store";

/** Rows per query while exporting: memory stays bounded by one page, whatever the history's length. */
export const EXPORT_PAGE_ROWS = 1_000;

const encoder = new TextEncoder();

/**
 * A user's whole event history as NDJSON: `header` on the first line, then one event per line. Each page
 * is its own short tenant transaction (keyset on ts, event id), so no transaction or connection is held
 * between pages. `done` settles when the stream ends, fails or the client goes away; the caller keeps the
 * database handle open until then.
 */
export function exportUserEvents(
  db: Db,
  scope: { orgId: string; projectId: string; userId: string },
  filter: EventFilter,
  header: unknown,
): { stream: ReadableStream<Uint8Array>; done: Promise<void> } {
  let finish: () => void = () => {};
  const done = new Promise<void>((resolve) => {
    finish = resolve;
  });
  let cursor: EventCursor | null = null;
  let headerSent = false;
  const stream = new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        try {
          if (!headerSent) {
            headerSent = true;
            controller.enqueue(encoder.encode(`${JSON.stringify(header)}\n`));
            return;
          }
          const page = await withTenant(db, scope.orgId, (tx) =>
            userEventsPage(tx, scope.projectId, scope.userId, filter, EXPORT_PAGE_ROWS, cursor),
          );
          if (page.data.length > 0) {
            controller.enqueue(encoder.encode(`${page.data.map((e) => JSON.stringify(e)).join("\n")}\n`));
          }
          cursor = page.last;
          if (!page.hasMore) {
            controller.close();
            finish();
          }
        } catch (error) {
          controller.error(error);
          finish();
        }
      },
      cancel() {
        finish();
      },
    },
    { highWaterMark: 0 },
  );
  return { stream, done };
}
