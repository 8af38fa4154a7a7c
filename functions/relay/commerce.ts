import { pageUrlForRelay } from "../../shared/pageUrl";

// The commerce fields both ad platforms understand, read from an event's properties. Only well-typed
// values are taken; anything else is left out rather than failing the event (or, worse, the batch).

export interface Commerce {
  value?: number;
  currency?: string;
  contentIds?: string[];
  contentType?: string;
  contentName?: string;
  contentCategory?: string;
  numItems?: number;
  orderId?: string;
  searchString?: string;
  url?: string;
}

const str = (v: unknown, max = 500): string | undefined =>
  typeof v === "string" && v.trim() !== "" ? v.trim().slice(0, max) : undefined;

function num(v: unknown): number | undefined {
  if (typeof v === "number" && Number.isFinite(v)) return v;
  if (typeof v === "string" && /^-?\d+(\.\d+)?$/.test(v.trim())) return Number(v.trim());
  return undefined;
}

/**
 * Reads value, currency (ISO 4217), content ids, order id… under the names SDKs commonly use. Only the
 * properties' own keys count: an inherited member (or a prototype a "__proto__" key once set) is not a
 * property the SDK sent.
 */
export function commerceFrom(p: Record<string, unknown>): Commerce {
  const first = (...keys: string[]): unknown => {
    for (const key of keys) {
      const v = Object.hasOwn(p, key) ? p[key] : undefined;
      if (v !== undefined && v !== null) return v;
    }
    return undefined;
  };
  const out: Commerce = {};
  const value = num(first("value", "revenue", "price"));
  if (value !== undefined) out.value = value;
  const currency = str(first("currency"));
  if (currency && /^[A-Za-z]{3}$/.test(currency)) out.currency = currency.toUpperCase();
  const ids = first("content_ids", "contentIds", "product_ids");
  const single = str(first("content_id", "contentId", "product_id", "sku"), 200);
  if (Array.isArray(ids)) {
    const list = ids.map((id) => (typeof id === "number" ? String(id) : str(id, 200))).filter(Boolean);
    if (list.length) out.contentIds = (list as string[]).slice(0, 100);
  } else if (single) {
    out.contentIds = [single];
  }
  const contentType = str(first("content_type", "contentType"), 50);
  if (contentType) out.contentType = contentType;
  const contentName = str(first("content_name", "contentName", "product_name"));
  if (contentName) out.contentName = contentName;
  const category = str(first("content_category", "category"));
  if (category) out.contentCategory = category;
  const numItems = num(first("num_items", "quantity"));
  if (numItems !== undefined && Number.isInteger(numItems) && numItems >= 0) out.numItems = numItems;
  const orderId = str(first("order_id", "orderId", "transaction_id"), 200);
  if (orderId) out.orderId = orderId;
  const search = str(first("search_string", "query", "search_term"));
  if (search) out.searchString = search;
  // Relayed like the SDK's pageUrl field: http(s) only, without credentials, query or fragment; a URL
  // too long for that is left out, not cut.
  const rawUrl = str(first("url", "page_url"), Number.POSITIVE_INFINITY);
  const url = rawUrl ? pageUrlForRelay(rawUrl) : null;
  if (url) out.url = url;
  return out;
}
