import { INGEST_LIMITS } from "./limits";

// A page URL leaves us only for the ad platforms (Meta's event_source_url, TikTok's page.url). Query strings
// and fragments are where sites put e-mail addresses, password-reset tokens and OAuth codes, and a
// user:password part is a credential: all three are removed, leaving scheme, host and path.

/**
 * The form of a page URL that may be relayed: an absolute http(s) URL without credentials, query or
 * fragment, at most INGEST_LIMITS.maxPageUrlLength characters (before and after; percent-encoding can
 * lengthen it). Null when the input is not such a URL.
 */
export function pageUrlForRelay(raw: string): string | null {
  if (raw.length > INGEST_LIMITS.maxPageUrlLength) return null;
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return null;
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") return null;
  url.username = "";
  url.password = "";
  url.search = "";
  url.hash = "";
  return url.href.length <= INGEST_LIMITS.maxPageUrlLength ? url.href : null;
}
