import { isSdkKeyShaped } from "../../functions/ingest/resolveSdkKey";
import { ApiError } from "../../shared/errors";

/**
 * The SDK key a request presents: `Authorization: Bearer lp_pk_…`, or `?key=lp_pk_…` in the URL for
 * browsers sending without a CORS preflight (a request that sets Authorization needs one: on a page being
 * closed, one more round trip that must finish before the events leave). A key in the URL is fine only because
 * SDK keys are publishable — they are in every page's source and can only add events to their project.
 * Secret API keys are never read from a URL, here or in the partner API.
 *
 * Checks shape only (cheap: no lookup); the caller resolves the key.
 */
export function sdkKeyFromRequest(request: Request): string {
  const url = new URL(request.url);
  const inUrl = url.searchParams.getAll("key");
  const header = request.headers.get("Authorization");
  if (inUrl.length === 0) {
    const secret = /^Bearer\s+(\S+)$/i.exec(header ?? "")?.[1];
    if (!secret || !isSdkKeyShaped(secret))
      throw new ApiError("unauthorized", "Send the project's SDK key as `Authorization: Bearer lp_pk_…`.");
    return secret;
  }
  if (inUrl.length > 1 || header !== null)
    throw new ApiError(
      "invalid_request",
      "Send the SDK key once: either `Authorization: Bearer lp_pk_…` or `?key=lp_pk_…`, not both.",
    );
  const secret = inUrl[0] as string;
  if (/^lp_(live|test)_/.test(secret))
    throw new ApiError(
      "unauthorized",
      "`?key=` takes only the publishable SDK key (lp_pk_…). This is a secret API key: it is never accepted " +
        "in a URL, and it may now be in logs along the way — rotate it.",
    );
  if (!isSdkKeyShaped(secret))
    throw new ApiError(
      "unauthorized",
      "`?key=` must be the project's SDK key, lp_pk_ + 32 letters or digits.",
    );
  assertBeaconContentType(request.headers.get("Content-Type"));
  return secret;
}

/**
 * With the key in the URL the body must still be UTF-8 JSON, sent as `text/plain` (what `sendBeacon` and a
 * header-less `fetch` send: CORS-safelisted, so no preflight) or `application/json`, or with no type at
 * all. The form encodings a browser may also send without a preflight are refused by name instead of
 * failing later as `invalid_json`.
 */
function assertBeaconContentType(contentType: string | null): void {
  if (contentType === null || contentType.trim() === "") return;
  const [type = "", ...params] = contentType.toLowerCase().split(";");
  const charset = params.map((p) => p.trim()).find((p) => p.startsWith("charset="));
  const okType = type.trim() === "text/plain" || type.trim() === "application/json";
  const okCharset = charset === undefined || /^charset="?utf-8"?$/.test(charset);
  if (!okType || !okCharset)
    throw new ApiError(
      "unsupported_media_type",
      "With `?key=` the body is UTF-8 JSON sent as `text/plain` or `application/json`.",
    );
}
