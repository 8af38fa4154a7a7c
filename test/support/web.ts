// What a browser's request carries, for tests whose events must reach Meta as website events: Meta
// requires client_user_agent (from the request's User-Agent) and event_source_url (the SDK's pageUrl).

export const BROWSER_UA =
  "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36";

export const PAGE_URL = "https://shop.example/checkout";

/** Headers for stack.ingest from a browser. */
export const browserHeaders = { "User-Agent": BROWSER_UA };
