import { utf8Length } from "./limits.js";
import type { LayersStorage } from "./storage.js";
import type { LayersEvent } from "./types.js";

/** A queued event with its JSON (sent as is) and that JSON's size in bytes. */
export interface QueuedItem {
  event: LayersEvent;
  json: string;
  bytes: number;
  /**
   * In a request right now: not taken into another batch, except that a page being closed puts events of
   * an ordinary request (which the browser cancels on unload) into its keepalive request too.
   */
  sending?: "request" | "keepalive";
}

/**
 * An event ready to queue and send. With ads consent refused, what only the ad platforms use — the device's
 * ad ids, the AdServices token and the page URL — is removed here, so it is neither stored on the device
 * nor sent (the ingest would drop it too, but it never has to leave the page).
 */
export function toItem(event: LayersEvent): QueuedItem {
  if (event.consent?.ads === false) {
    delete event.adServicesToken;
    delete event.pageUrl;
    if (event.device) {
      const { idfa: _idfa, gaid: _gaid, ...kept } = event.device;
      event.device = kept;
    }
  }
  const json = JSON.stringify(event);
  return { event, json, bytes: utf8Length(json) };
}

/**
 * The events not yet accepted by the ingest, in memory and in storage. Storage holds one JSON array per SDK
 * key; each instance writes only its own changes into it (events it added, events it removed), read and
 * written in one step, so two tabs sharing a storage do not erase each other's events. Bounded: past
 * `maxSize` the oldest events are dropped and reported.
 */
export class PersistentQueue {
  items: QueuedItem[] = [];
  /** Kept as items: storage gets the JSON that was (or will be) sent, not objects the caller may change. */
  private added: QueuedItem[] = [];
  private removed = new Set<string>();
  private writing: Promise<void> | null = null;
  private scheduled = false;
  private loadedFlag = false;

  constructor(
    private readonly storage: LayersStorage,
    private readonly storageKey: string,
    private readonly maxSize: number,
    private readonly onDrop: (events: LayersEvent[]) => void,
  ) {}

  /** Reads what an earlier instance left; events tracked meanwhile come after it. */
  async load(): Promise<void> {
    let stored: LayersEvent[] = [];
    try {
      stored = parseEvents(await this.storage.getItem(this.storageKey));
    } catch {
      // unreadable storage: start with what is in memory
    }
    const mine = new Set(this.items.map((i) => i.event.eventId));
    const earlier = stored.filter((e) => !mine.has(e.eventId)).map(toItem);
    this.items = [...earlier, ...this.items];
    this.loadedFlag = true;
    this.bound();
    this.schedulePersist();
  }

  get loaded(): boolean {
    return this.loadedFlag;
  }

  push(item: QueuedItem): void {
    this.items.push(item);
    this.added.push(item);
    this.bound();
    this.schedulePersist();
  }

  remove(items: QueuedItem[]): void {
    const ids = new Set(items.map((i) => i.event.eventId));
    this.items = this.items.filter((i) => !ids.has(i.event.eventId));
    for (const id of ids) this.removed.add(id);
    this.schedulePersist();
  }

  /** Drops the oldest events past maxSize (those in a request last: their answer may still remove them). */
  private bound(): void {
    let excess = this.items.length - this.maxSize;
    if (excess <= 0) return;
    const dropped: QueuedItem[] = [];
    for (const item of this.items) {
      if (excess === 0) break;
      if (!item.sending) {
        dropped.push(item);
        excess--;
      }
    }
    if (dropped.length === 0) return;
    this.remove(dropped);
    this.onDrop(dropped.map((i) => i.event));
  }

  /** Persists after the current task: many track() calls in a row cost one write. */
  private schedulePersist(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    void Promise.resolve().then(() => {
      this.scheduled = false;
      void this.persist();
    });
  }

  /** Writes this instance's changes now (waits for a write in progress first). */
  async persist(): Promise<void> {
    while (this.writing) await this.writing;
    if (!this.loadedFlag || (this.added.length === 0 && this.removed.size === 0)) return;
    const added = this.added;
    const removed = this.removed;
    this.added = [];
    this.removed = new Set();
    const change = (value: string | null) => {
      const stored = parseEvents(value).filter((e) => !removed.has(e.eventId));
      const present = new Set(stored.map((e) => e.eventId));
      const next = stored
        .map((e) => JSON.stringify(e))
        .concat(
          added
            .filter((i) => !removed.has(i.event.eventId) && !present.has(i.event.eventId))
            .map((i) => i.json),
        );
      // Storage is bounded too (other tabs add to it); the oldest go first.
      return next.length === 0 ? null : `[${next.slice(-this.maxSize).join(",")}]`;
    };
    this.writing = (async () => {
      try {
        if (this.storage.update) await this.storage.update(this.storageKey, change);
        else {
          const next = change(await this.storage.getItem(this.storageKey));
          await (next === null
            ? this.storage.removeItem(this.storageKey)
            : this.storage.setItem(this.storageKey, next));
        }
      } catch {
        // Storage refused (quota, blocked): keep the changes for the next write; memory still holds the events.
        this.added = added.concat(this.added);
        for (const id of removed) this.removed.add(id);
      } finally {
        this.writing = null;
      }
    })();
    await this.writing;
  }
}

function parseEvents(value: string | null): LayersEvent[] {
  if (!value) return [];
  try {
    const parsed: unknown = JSON.parse(value);
    return Array.isArray(parsed)
      ? parsed.filter(
          (e): e is LayersEvent =>
            typeof e === "object" && e !== null && typeof (e as LayersEvent).eventId === "string",
        )
      : [];
  } catch {
    return [];
  }
}
