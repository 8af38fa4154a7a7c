import type { RelayEvent } from "../../shared/schemas/relay";
import { commerceFrom } from "./commerce";
import { tiktokEventName } from "./eventNames";
import { hashBatchIdentities } from "./identity";
import type { Built, Skipped } from "./skips";

// TikTok Events API 2.0 (POST {base}/event/track/, Access-Token header, data[] ≤ 1,000), sent to the
// partner's pixel (event_source "web"). Standard events only; email and phone hashed by the edge (phone
// as E.164 with "+", TikTok's rule), external_id hashed here.

export interface TikTokEvent {
  event: string;
  event_time: number;
  event_id: string;
  user: { email?: string; phone?: string; external_id?: string };
  properties?: Record<string, unknown>;
  page?: { url: string };
}

export async function buildTikTokEvents(events: RelayEvent[]): Promise<Built<TikTokEvent>> {
  const items: TikTokEvent[] = [];
  const sentIds: string[] = [];
  const skipped: Skipped[] = [];
  const hashes = await hashBatchIdentities(events);
  for (const e of events) {
    const name = tiktokEventName(e.name);
    if (!name) {
      skipped.push({ eventId: e.eventId, reason: "not_a_standard_event" });
      continue;
    }
    const externalId = hashes.externalId(e.userId);
    const user: TikTokEvent["user"] = {
      ...(e.emailSha256 && { email: e.emailSha256 }),
      ...(e.phoneE164Sha256 && { phone: e.phoneE164Sha256 }),
      ...(externalId && { external_id: externalId }),
    };
    if (!user.email && !user.phone && !user.external_id) {
      skipped.push({ eventId: e.eventId, reason: "no_customer_information" });
      continue;
    }
    const c = commerceFrom(e.properties);
    const properties: Record<string, unknown> = {
      ...(c.value !== undefined && { value: c.value }),
      ...(c.currency && { currency: c.currency }),
      ...(c.contentIds && { contents: c.contentIds.map((content_id) => ({ content_id })) }),
      ...(c.contentType && { content_type: c.contentType }),
      ...(c.contentName && { description: c.contentName }),
      ...(c.orderId && { order_id: c.orderId }),
      ...(c.searchString && { query: c.searchString }),
    };
    const item: TikTokEvent = {
      event: name,
      event_time: Math.floor(Date.parse(e.timestamp) / 1000),
      event_id: e.eventId,
      user,
    };
    if (Object.keys(properties).length) item.properties = properties;
    const url = e.pageUrl ?? c.url;
    if (url) item.page = { url };
    items.push(item);
    sentIds.push(e.eventId);
  }
  return { items, sentIds, skipped };
}
