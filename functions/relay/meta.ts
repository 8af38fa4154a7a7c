import type { RelayEvent } from "../../shared/schemas/relay";
import { commerceFrom } from "./commerce";
import { metaEventName } from "./eventNames";
import { hashBatchIdentities, mobilePlatform } from "./identity";
import type { Built, Skipped } from "./skips";

// Meta Conversions API: one server event per our event (POST {base}/{dataset_id}/events, data[] ≤ 1,000).
// Meta rejects the whole request when one event is invalid (e.g. older than 7 days, or a website event
// without client_user_agent or event_source_url), so every event is checked here first and the ones that
// cannot be sent are left out with a reason.

/** Meta refuses event_time older than 7 days; a margin keeps an event near the edge from failing the call. */
export const META_MAX_EVENT_AGE_MS = 7 * 24 * 3600_000 - 10 * 60_000;

export interface MetaServerEvent {
  event_name: string;
  event_time: number;
  event_id: string;
  action_source: "app" | "website";
  event_source_url?: string;
  user_data: {
    em?: string[];
    ph?: string[];
    external_id?: string[];
    country?: string[];
    madid?: string;
    /** The raw User-Agent, not hashed (Meta's rule); website events only. */
    client_user_agent?: string;
  };
  custom_data?: Record<string, unknown>;
  app_data?: {
    advertiser_tracking_enabled: 0 | 1;
    application_tracking_enabled: 0 | 1;
    extinfo: string[];
  };
}

/** Meta's 16-field extinfo: version, package, short/long version, OS version, model, then device details we do not collect. */
function extinfo(platform: "ios" | "android", e: RelayEvent): string[] {
  const out = new Array<string>(16).fill("");
  out[0] = platform === "ios" ? "i2" : "a2";
  out[1] = e.appId ?? "";
  out[4] = e.osVersion ?? "";
  out[5] = e.deviceModel ?? "";
  return out;
}

export async function buildMetaEvents(events: RelayEvent[], now: Date): Promise<Built<MetaServerEvent>> {
  const items: MetaServerEvent[] = [];
  const sentIds: string[] = [];
  const skipped: Skipped[] = [];
  const hashes = await hashBatchIdentities(events);
  for (const e of events) {
    const at = Date.parse(e.timestamp);
    if (now.getTime() - at > META_MAX_EVENT_AGE_MS) {
      skipped.push({ eventId: e.eventId, reason: "too_old" });
      continue;
    }
    const name = metaEventName(e.name);
    if (!name) {
      skipped.push({ eventId: e.eventId, reason: "event_name_invalid" });
      continue;
    }
    const externalId = hashes.externalId(e.userId);
    const country = hashes.country(e.country);
    const user: MetaServerEvent["user_data"] = {
      ...(e.emailSha256 && { em: [e.emailSha256] }),
      ...(e.phoneSha256 && { ph: [e.phoneSha256] }),
      ...(externalId && { external_id: [externalId] }),
      ...(country && { country: [country] }),
      ...(e.madid && { madid: e.madid }),
    };
    if (!user.em && !user.ph && !user.external_id && !user.madid) {
      skipped.push({ eventId: e.eventId, reason: "no_customer_information" });
      continue;
    }
    const platform = mobilePlatform(e);
    const c = commerceFrom(e.properties);
    // A website event needs both, or Meta refuses the request with every other event in it.
    const sourceUrl = e.pageUrl ?? c.url;
    if (!platform && !e.userAgent) {
      skipped.push({ eventId: e.eventId, reason: "no_client_user_agent" });
      continue;
    }
    if (!platform && !sourceUrl) {
      skipped.push({ eventId: e.eventId, reason: "no_event_source_url" });
      continue;
    }
    const custom: Record<string, unknown> = {
      ...(c.value !== undefined && { value: c.value }),
      ...(c.currency && { currency: c.currency }),
      ...(c.contentIds && { content_ids: c.contentIds }),
      ...(c.contentType && { content_type: c.contentType }),
      ...(c.contentName && { content_name: c.contentName }),
      ...(c.contentCategory && { content_category: c.contentCategory }),
      ...(c.numItems !== undefined && { num_items: c.numItems }),
      ...(c.orderId && { order_id: c.orderId }),
      ...(c.searchString && { search_string: c.searchString }),
    };
    const item: MetaServerEvent = {
      event_name: name,
      event_time: Math.floor(at / 1000),
      event_id: e.eventId,
      action_source: platform ? "app" : "website",
      user_data: user,
    };
    if (Object.keys(custom).length) item.custom_data = custom;
    if (platform) {
      item.app_data = {
        advertiser_tracking_enabled: e.consentAds === true ? 1 : 0,
        application_tracking_enabled: 1,
        extinfo: extinfo(platform, e),
      };
    } else {
      user.client_user_agent = e.userAgent;
      item.event_source_url = sourceUrl;
    }
    items.push(item);
    sentIds.push(e.eventId);
  }
  return { items, sentIds, skipped };
}
