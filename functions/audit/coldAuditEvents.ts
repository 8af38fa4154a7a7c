import { sql } from "kysely";
import { withFilters } from "../../shared/db/filters";
import type { ArchivedAuditRow } from "../archive/archiveAuditLog";
import { decodeNdjsonGz } from "../archive/ndjson";
import type { VerbContext } from "../context";
import type { ObjectStore } from "../storage/objectStore";
import type { AuditEvent, AuditLogFilter } from "./listAuditEvents";

// GET /v1/audit-log over the hot table AND the cold archive: the same filters, the same order (newest
// first on occurred_at, id) and the same cursor. Rows older than the hot period live in one object per org
// and UTC day (functions/archive); audit_archive_objects lists an org's days, so a page reads only the
// org's objects, newest day first, and stops as soon as the page is certain.
//
// Cursor: `starting_after` is the last id of the previous page, as for every list. A page that ends on an
// archived row answers nextCursor `<id>.<µs since epoch, base 36>`: an archived id is in no table, so the
// cursor carries its position. A plain archived id still works (its day is searched, newest first, within
// the per-request object budget); an unknown id gives an empty page, as before.

/** Cold objects one request may read (each is one org-day). */
export const COLD_OBJECTS_PER_REQUEST = 31;

interface Position {
  /** Microseconds since the epoch. */
  us: number;
  id: string;
}

interface Ranked {
  event: AuditEvent;
  us: number;
  cold: boolean;
}

const CURSOR = /^([A-Za-z0-9_]{0,40})\.([0-9a-z]{1,12})$/;

export function coldCursor(position: Position): string {
  return `${position.id}.${position.us.toString(36)}`;
}

function parseCursor(cursor: string): Position | { id: string } {
  const m = CURSOR.exec(cursor);
  if (m) return { id: m[1] ?? "", us: Number.parseInt(m[2] ?? "0", 36) };
  return { id: cursor };
}

/** An archived row's occurred_at ("YYYY-MM-DDTHH:MM:SS.ffffffZ") in µs since the epoch. */
function microsOf(occurredAt: string): number {
  const ms = Date.parse(`${occurredAt.slice(0, 23)}Z`);
  const extra = /^\.\d{3}(\d{3})Z$/.exec(occurredAt.slice(19));
  return ms * 1000 + Number(extra?.[1] ?? 0);
}

const before = (a: { us: number; id: string }, p: Position) => a.us < p.us || (a.us === p.us && a.id < p.id);
const newestFirst = (a: Ranked, b: Ranked) =>
  b.us - a.us || (a.event.id < b.event.id ? 1 : a.event.id > b.event.id ? -1 : 0);

function fromArchive(row: ArchivedAuditRow): Ranked {
  return {
    us: microsOf(row.occurred_at),
    cold: true,
    event: {
      id: row.id,
      occurredAt: new Date(Date.parse(row.occurred_at)),
      actor: { type: row.actor_type as AuditEvent["actor"]["type"], id: row.actor_id },
      action: row.action,
      resource: { type: row.resource_type, id: row.resource_id },
      requestId: row.request_id,
      changes: (row.changes ?? {}) as Record<string, unknown>,
    },
  };
}

function matches(row: ArchivedAuditRow, us: number, filter: AuditLogFilter): boolean {
  if (filter.action !== undefined && row.action !== filter.action) return false;
  if (filter.resourceType !== undefined && row.resource_type !== filter.resourceType) return false;
  if (filter.resourceId !== undefined && row.resource_id !== filter.resourceId) return false;
  if (filter.actorId !== undefined && row.actor_id !== filter.actorId) return false;
  if (filter.from && us < filter.from.getTime() * 1000) return false;
  if (filter.to && us >= filter.to.getTime() * 1000) return false;
  return true;
}

const dayOf = (us: number) => new Date(Math.floor(us / 1000)).toISOString().slice(0, 10);

/** The org's archive days, newest first, at most `limit`, on or before `upTo`, on or after `from`. */
async function archiveDays(
  ctx: VerbContext,
  range: { upTo?: string | undefined; from?: string | undefined },
  limit: number,
): Promise<{ day: string; object_key: string }[]> {
  let q = ctx.db
    .selectFrom("audit_archive_objects")
    .select([sql<string>`day::text`.as("day"), "object_key"])
    .where("org_id", "=", ctx.orgId);
  if (range.upTo) q = q.where(sql<boolean>`day <= ${range.upTo}::date`);
  if (range.from) q = q.where(sql<boolean>`day >= ${range.from}::date`);
  return q.orderBy("day", "desc").limit(limit).execute();
}

async function readDay(archive: ObjectStore, key: string): Promise<ArchivedAuditRow[]> {
  const bytes = await archive.get(key);
  return bytes ? ((await decodeNdjsonGz(bytes)) as ArchivedAuditRow[]) : [];
}

const COLUMNS = [
  "id",
  "occurred_at",
  "actor_type",
  "actor_id",
  "action",
  "resource_type",
  "resource_id",
  "request_id",
  "changes",
] as const;

/**
 * One page of the org's audit events across the hot table and the cold archive. `nextCursor` is what the
 * client passes back as starting_after.
 */
export async function listAuditEventsWithArchive(
  ctx: VerbContext,
  archive: ObjectStore,
  filter: AuditLogFilter,
  page: { limit: number; startingAfter?: string | undefined },
): Promise<{ data: AuditEvent[]; hasMore: boolean; nextCursor: string | null }> {
  let budget = COLD_OBJECTS_PER_REQUEST;
  const empty = { data: [], hasMore: false, nextCursor: null };

  // Where the previous page ended.
  let position: Position | undefined;
  if (page.startingAfter) {
    const cursor = parseCursor(page.startingAfter);
    if ("us" in cursor) position = cursor;
    else {
      const hot = await ctx.db
        .selectFrom("audit_log")
        .select(sql<string>`(extract(epoch from occurred_at) * 1000000)::bigint::text`.as("us"))
        .where("id", "=", cursor.id)
        .executeTakeFirst();
      if (hot) position = { us: Number(hot.us), id: cursor.id };
      else {
        // An archived row named by its id alone: find its day, newest first, within the budget.
        const days = await archiveDays(ctx, {}, budget);
        for (const d of days) {
          budget -= 1;
          const row = (await readDay(archive, d.object_key)).find((r) => r.id === cursor.id);
          if (row) {
            position = { us: microsOf(row.occurred_at), id: row.id };
            break;
          }
        }
        if (!position) return empty;
      }
    }
  }

  const at = (p: Position) => sql`(timestamptz 'epoch' + ${String(p.us)}::bigint * interval '1 microsecond')`;
  let hotQuery = withFilters(
    ctx.db
      .selectFrom("audit_log")
      .select([...COLUMNS, sql<string>`(extract(epoch from occurred_at) * 1000000)::bigint::text`.as("us")]),
    {
      equal: {
        action: filter.action,
        resource_type: filter.resourceType,
        resource_id: filter.resourceId,
        actor_id: filter.actorId,
      },
      time: { column: "occurred_at", from: filter.from, to: filter.to },
    },
  );
  if (position) {
    const p = position;
    hotQuery = hotQuery.where(
      sql<boolean>`(occurred_at < ${at(p)} or (occurred_at = ${at(p)} and id < ${p.id}))`,
    );
  }
  const hotRows = await hotQuery
    .orderBy(sql`occurred_at desc, id desc`)
    .limit(page.limit + 1)
    .execute();
  const hot: Ranked[] = hotRows.map((row) => ({
    us: Number(row.us),
    cold: false,
    event: {
      id: row.id,
      occurredAt: row.occurred_at,
      actor: { type: row.actor_type as AuditEvent["actor"]["type"], id: row.actor_id },
      action: row.action,
      resource: { type: row.resource_type, id: row.resource_id },
      requestId: row.request_id,
      changes: row.changes as Record<string, unknown>,
    },
  }));

  // The cold rows that could be on this page: days newest first until the page is certain.
  const cold: Ranked[] = [];
  const upperUs = Math.min(
    position?.us ?? Number.MAX_SAFE_INTEGER,
    filter.to ? filter.to.getTime() * 1000 - 1 : Number.MAX_SAFE_INTEGER,
  );
  let upTo = upperUs === Number.MAX_SAFE_INTEGER ? undefined : dayOf(upperUs);
  const from = filter.from ? dayOf(filter.from.getTime() * 1000) : undefined;
  const hotFloor = hot.length > page.limit ? hot[page.limit]?.us : undefined;
  /** Rows at or after this instant are certain: every day from here to the cursor has been read. */
  let certainFrom: number | undefined;
  let exhausted = false;
  let unread = false;
  while (!exhausted) {
    if (cold.length > page.limit) break;
    // At least one day even with no budget left: it tells an exhausted budget from an exhausted archive.
    const days = await archiveDays(ctx, { upTo, from }, Math.max(1, Math.min(budget, 8)));
    if (days.length === 0) {
      exhausted = true;
      break;
    }
    for (const d of days) {
      const dayStartUs = Date.parse(`${d.day}T00:00:00Z`) * 1000;
      const dayEndUs = dayStartUs + 86_400_000_000;
      // Every row of this and older days is older than the hot rows already enough for the page.
      if (hotFloor !== undefined && dayEndUs <= hotFloor) {
        exhausted = true;
        break;
      }
      if (cold.length > page.limit) break;
      if (budget <= 0) {
        unread = true;
        break;
      }
      budget -= 1;
      for (const row of await readDay(archive, d.object_key)) {
        const ranked = fromArchive(row);
        if (!matches(row, ranked.us, filter)) continue;
        if (position && !before({ us: ranked.us, id: row.id }, position)) continue;
        cold.push(ranked);
      }
      certainFrom = dayStartUs;
      const previous = new Date(dayStartUs / 1000 - 86_400_000).toISOString().slice(0, 10);
      upTo = previous;
    }
    if (unread) break;
  }

  const seen = new Set<string>();
  let merged = [...hot, ...cold].sort(newestFirst).filter((r) => {
    if (seen.has(r.event.id)) return false;
    seen.add(r.event.id);
    return true;
  });
  if (unread) {
    // The budget ran out: only rows no unread day could precede are certain.
    const floor = certainFrom ?? upperUs + 1;
    merged = merged.filter((r) => r.us >= floor);
    if (merged.length <= page.limit) {
      const last = merged.at(-1);
      return {
        data: merged.map((r) => r.event),
        hasMore: true,
        nextCursor: last ? coldCursor({ us: last.us, id: last.event.id }) : coldCursor({ us: floor, id: "" }),
      };
    }
  }
  const rows = merged.slice(0, page.limit);
  const hasMore = merged.length > page.limit;
  const last = rows.at(-1);
  return {
    data: rows.map((r) => r.event),
    hasMore,
    nextCursor:
      !hasMore || !last ? null : last.cold ? coldCursor({ us: last.us, id: last.event.id }) : last.event.id,
  };
}
