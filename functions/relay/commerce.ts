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

/** Reads value, currency (ISO 4217), content ids, order id… under the names SDKs commonly use. */
export function commerceFrom(p: Record<string, unknown>): Commerce {
  const out: Commerce = {};
  const value = num(p.value ?? p.revenue ?? p.price);
  if (value !== undefined) out.value = value;
  const currency = str(p.currency);
  if (currency && /^[A-Za-z]{3}$/.test(currency)) out.currency = currency.toUpperCase();
  const ids = p.content_ids ?? p.contentIds ?? p.product_ids;
  const single = str(p.content_id ?? p.contentId ?? p.product_id ?? p.sku, 200);
  if (Array.isArray(ids)) {
    const list = ids.map((id) => (typeof id === "number" ? String(id) : str(id, 200))).filter(Boolean);
    if (list.length) out.contentIds = (list as string[]).slice(0, 100);
  } else if (single) {
    out.contentIds = [single];
  }
  const contentType = str(p.content_type ?? p.contentType, 50);
  if (contentType) out.contentType = contentType;
  const contentName = str(p.content_name ?? p.contentName ?? p.product_name);
  if (contentName) out.contentName = contentName;
  const category = str(p.content_category ?? p.category);
  if (category) out.contentCategory = category;
  const numItems = num(p.num_items ?? p.quantity);
  if (numItems !== undefined && Number.isInteger(numItems) && numItems >= 0) out.numItems = numItems;
  const orderId = str(p.order_id ?? p.orderId ?? p.transaction_id, 200);
  if (orderId) out.orderId = orderId;
  const search = str(p.search_string ?? p.query ?? p.search_term);
  if (search) out.searchString = search;
  const url = str(p.url ?? p.page_url, 2048);
  if (url && /^https?:\/\//.test(url)) out.url = url;
  return out;
}
