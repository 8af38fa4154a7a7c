// Browser-only pieces, each a no-op where there is no page (React Native, Node).

interface Page {
  location?: { href?: string };
  document?: {
    visibilityState?: string;
    addEventListener?(type: string, listener: () => void): void;
    removeEventListener?(type: string, listener: () => void): void;
  };
  addEventListener?(type: string, listener: () => void): void;
  removeEventListener?(type: string, listener: () => void): void;
}
const page = globalThis as unknown as Page;

/**
 * The page's URL as the relays may see it: scheme, host and path. The query string and fragment (where
 * sites put e-mail addresses and tokens) never leave the device; null outside a http(s) page or past the
 * ingest's 2,048 characters.
 */
export function currentPageUrl(): string | null {
  const href = page.location?.href;
  if (typeof href !== "string" || !/^https?:\/\//i.test(href)) return null;
  const url = href.replace(/[?#].*$/s, "").replace(/^(https?:\/\/)[^/@]*@/i, "$1");
  return url.length <= 2048 ? url : null;
}

/**
 * Calls `run` when the page is hidden or unloaded (visibilitychange→hidden covers mobile browsers that
 * never fire pagehide). Returns the function that removes the listeners.
 */
export function onPageHidden(run: () => void): () => void {
  const doc = page.document;
  if (!page.addEventListener || !doc?.addEventListener) return () => {};
  const onVisibility = () => {
    if (doc.visibilityState === "hidden") run();
  };
  page.addEventListener("pagehide", run);
  doc.addEventListener("visibilitychange", onVisibility);
  return () => {
    page.removeEventListener?.("pagehide", run);
    doc.removeEventListener?.("visibilitychange", onVisibility);
  };
}
