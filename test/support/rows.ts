import type { Db } from "../../shared/db";
import { waitFor } from "./stack";

/** Waits until the project holds `count` events (the queue has delivered and the consumer persisted). */
export async function waitForEvents(db: Db, projectId: string, count: number, timeoutMs = 20_000) {
  return waitFor(async () => {
    const rows = await db
      .selectFrom("sdk_events")
      .selectAll()
      .where("project_id", "=", projectId)
      .orderBy("ts")
      .orderBy("event_id")
      .execute();
    return rows.length >= count ? rows : undefined;
  }, timeoutMs);
}

export const UA = {
  iphone:
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
  chromeDesktop:
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
};
