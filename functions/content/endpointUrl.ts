// Whether a partner-supplied URL may be called from our Workers (the storage-config endpoint today; still
// separate from the webhooks' checkWebhookUrl in functions/webhooks/ssrf.ts, to be unified later). The
// rule: https to a public host name or address only. Plain http is allowed solely when the deployment says
// so (dev and tests: STORAGE_ALLOW_LOCAL_HTTP), and then only to a loopback host, where the local S3
// servers listen. Addresses written as IP literals in private, loopback, link-local or otherwise special
// ranges are refused, so an endpoint cannot aim our fetches at internal services or metadata addresses.
// (A public name that resolves to a private address is not caught here: Workers' fetch cannot reach
// private networks in production, which is the layer that stops it there.)

export type EndpointRefusal =
  | "not_a_url"
  | "https_required"
  | "credentials_in_url"
  | "path_or_query_not_allowed"
  | "private_address";

export type EndpointCheck =
  | { ok: true; url: string }
  | { ok: false; reason: EndpointRefusal; message: string };

export interface EndpointPolicy {
  /** Dev and tests only: http://localhost, http://127.x.x.x and http://[::1] are accepted. */
  allowLocalHttp: boolean;
}

const MESSAGES: Record<EndpointRefusal, string> = {
  not_a_url: "Must be an absolute URL, such as https://<account>.r2.cloudflarestorage.com.",
  https_required: "Must use https.",
  credentials_in_url: "Must not carry a user name or password; send credentials in their own fields.",
  path_or_query_not_allowed:
    "Must be the service's origin only (no path, query or fragment); put the bucket and prefix in their fields.",
  private_address: "Must not point at a private, loopback, link-local or reserved address.",
};

const refuse = (reason: EndpointRefusal): EndpointCheck => ({ ok: false, reason, message: MESSAGES[reason] });

function isLoopbackHost(host: string): boolean {
  return host === "localhost" || host === "[::1]" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

/** IPv4 literals in ranges that are not the public internet (RFC 6890 and friends). */
function isSpecialIpv4(host: string): boolean {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(host);
  if (!m) return false;
  const [a, b] = [Number(m[1]), Number(m[2])];
  return (
    a === 0 ||
    a === 10 ||
    a === 127 ||
    (a === 100 && b >= 64 && b <= 127) ||
    (a === 169 && b === 254) ||
    (a === 172 && b >= 16 && b <= 31) ||
    (a === 192 && b === 168) ||
    (a === 192 && b === 0) ||
    (a === 198 && (b === 18 || b === 19)) ||
    a >= 224
  );
}

/** IPv6 literals (URL hosts keep their brackets): anything but global unicast is refused. */
function isSpecialIpv6(host: string): boolean {
  if (!host.startsWith("[")) return false;
  const h = host.slice(1, -1).toLowerCase();
  // Loopback, unspecified, IPv4-mapped/compatible, unique-local (fc00::/7), link-local (fe80::/10),
  // multicast (ff00::/8), documentation (2001:db8::/32).
  return (
    h === "::1" ||
    h === "::" ||
    h.startsWith("::") ||
    /^f[cd]/.test(h) ||
    /^fe[89ab]/.test(h) ||
    h.startsWith("ff") ||
    h.startsWith("2001:db8")
  );
}

/** The endpoint as it will be called (origin only, no trailing slash), or why it is refused. */
export function checkEndpointUrl(raw: string, policy: EndpointPolicy): EndpointCheck {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return refuse("not_a_url");
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") return refuse("https_required");
  if (url.username || url.password) return refuse("credentials_in_url");
  if ((url.pathname !== "/" && url.pathname !== "") || url.search || url.hash || raw.includes("?")) {
    return refuse("path_or_query_not_allowed");
  }
  const host = url.hostname.toLowerCase();
  const local = isLoopbackHost(host);
  if (url.protocol === "http:" && !(policy.allowLocalHttp && local)) return refuse("https_required");
  if (!(policy.allowLocalHttp && local)) {
    // URL parsing already turned decimal, octal and hex IPv4 spellings into dotted quads.
    if (host === "localhost" || host.endsWith(".localhost") || isSpecialIpv4(host) || isSpecialIpv6(host)) {
      return refuse("private_address");
    }
  }
  return { ok: true, url: url.origin };
}
