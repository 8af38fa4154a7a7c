import { checkWebhookUrl, type SsrfRefusal } from "../webhooks/ssrf";

// Whether a partner-supplied storage endpoint may be called from our Workers. One SSRF guard serves every
// partner URL we call (functions/webhooks/ssrf.ts: https only, plain http only to the local machine under
// dev and tests, no credentials, IP literals outside the public internet and internal names refused); this
// adds the storage rule that the endpoint is the service's origin alone (bucket and prefix have their own
// fields) and keeps the API's reason codes for storage configs.

export type EndpointRefusal =
  | "not_a_url"
  | "https_required"
  | "credentials_in_url"
  | "path_or_query_not_allowed"
  | "private_address"
  | "internal_hostname";

export type EndpointCheck =
  | { ok: true; url: string }
  | { ok: false; reason: EndpointRefusal; message: string };

export interface EndpointPolicy {
  /** Dev and tests only: http://localhost, http://127.0.0.1 and http://[::1] are accepted. */
  allowLocalHttp: boolean;
}

const REASONS: Record<SsrfRefusal, EndpointRefusal> = {
  invalid_url: "not_a_url",
  url_too_long: "not_a_url",
  scheme_not_allowed: "https_required",
  credentials_in_url: "credentials_in_url",
  private_address: "private_address",
  internal_hostname: "internal_hostname",
};

/** The endpoint as it will be called (origin only, no trailing slash), or why it is refused. */
export function checkEndpointUrl(raw: string, policy: EndpointPolicy): EndpointCheck {
  const guard = checkWebhookUrl(raw, { allowLocalHttp: policy.allowLocalHttp });
  if (!guard.ok) return { ok: false, reason: REASONS[guard.code], message: guard.message };
  const url = new URL(raw);
  if ((url.pathname !== "/" && url.pathname !== "") || url.search || url.hash || raw.includes("?")) {
    return {
      ok: false,
      reason: "path_or_query_not_allowed",
      message:
        "Must be the service's origin only (no path, query or fragment); put the bucket and prefix in their fields.",
    };
  }
  return { ok: true, url: url.origin };
}
