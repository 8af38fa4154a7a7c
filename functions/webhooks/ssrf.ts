// The SSRF guard for partner-supplied webhook URLs, run when an endpoint is created or changed and again
// before every delivery (a URL stored before a rule tightened is still checked).
//
// What it can check: the URL itself. IP literals are refused in every non-public range, in whatever form the
// URL spells them (WHATWG URL parsing turns 2130706433, 0x7f.1 and 0177.0.0.1 into 127.0.0.1 for http(s)
// URLs, so one check on the parsed host covers them; IPv6 literals are checked with their embedded IPv4
// forms). Names that only mean something inside a network (localhost, *.internal, single labels…) are refused.
//
// What it cannot check, and why that is acceptable here: where a public name resolves. A Worker has no DNS
// API, and checking with DNS over HTTPS before the fetch would not bind the fetch to the checked address (a
// rebinding name answers differently the second time). The guard that holds is the platform's: a Worker's
// fetch leaves through Cloudflare's edge to the public internet, and our own services (Neon, R2, other
// Workers) are reached only through bindings or authenticated public endpoints, never an address a
// webhook could name. Redirects are never followed (send.ts), so a public name cannot bounce the request
// to a refused one either. Under `npm run dev` a name resolving to a private address does reach it from the
// developer's machine (the README says so); tests run without DNS.

export type SsrfRefusal =
  | "invalid_url"
  | "url_too_long"
  | "scheme_not_allowed"
  | "credentials_in_url"
  | "private_address"
  | "internal_hostname";

export type SsrfCheck = { ok: true } | { ok: false; code: SsrfRefusal; message: string };

/** A webhook URL longer than this is refused (browsers and most servers stop near 2,048 too). */
export const MAX_WEBHOOK_URL_LENGTH = 2048;

export interface SsrfOptions {
  /**
   * Plain http to the local machine (localhost, 127.0.0.1, [::1]) only: true under `npm run dev` and tests
   * (the WEBHOOK_ALLOW_LOCAL_HTTP var), false in production, where only https is allowed.
   */
  allowLocalHttp: boolean;
}

const refuse = (code: SsrfRefusal, message: string): SsrfCheck => ({ ok: false, code, message });

/** Names that resolve only inside a network, or to the machine itself, or to a cloud metadata service. */
const INTERNAL_SUFFIXES = [
  ".localhost",
  ".local",
  ".localdomain",
  ".internal",
  ".intranet",
  ".lan",
  ".home",
  ".corp",
  ".home.arpa",
  ".arpa",
  ".onion",
  ".test",
  ".invalid",
  ".example",
];

const LOCAL_HTTP_HOSTS = new Set(["localhost", "127.0.0.1", "[::1]"]);

// IPv4 ranges refused: everything not globally routable unicast (RFC 6890 special-purpose registry).
const V4_REFUSED: Array<[string, number, string]> = [
  ["0.0.0.0", 8, "this network"],
  ["10.0.0.0", 8, "private"],
  ["100.64.0.0", 10, "carrier-grade NAT"],
  ["127.0.0.0", 8, "loopback"],
  ["169.254.0.0", 16, "link-local (cloud metadata)"],
  ["172.16.0.0", 12, "private"],
  ["192.0.0.0", 24, "IETF protocol assignments"],
  ["192.0.2.0", 24, "documentation"],
  ["192.88.99.0", 24, "6to4 relay"],
  ["192.168.0.0", 16, "private"],
  ["198.18.0.0", 15, "benchmarking"],
  ["198.51.100.0", 24, "documentation"],
  ["203.0.113.0", 24, "documentation"],
  ["224.0.0.0", 4, "multicast"],
  ["240.0.0.0", 4, "reserved (and broadcast)"],
];

function parseV4(text: string): number | null {
  const parts = text.split(".");
  if (parts.length !== 4) return null;
  let value = 0;
  for (const part of parts) {
    if (!/^\d{1,3}$/.test(part)) return null;
    const n = Number(part);
    if (n > 255) return null;
    value = value * 256 + n;
  }
  return value;
}

/** Why an IPv4 address (as a 32-bit number) is refused, or null when it is public unicast. */
function v4Refusal(address: number): string | null {
  for (const [base, bits, why] of V4_REFUSED) {
    const baseValue = parseV4(base) ?? 0;
    const size = 2 ** (32 - bits);
    if (address >= baseValue && address < baseValue + size) return why;
  }
  return null;
}

/** The eight 16-bit groups of an IPv6 address (no brackets, no zone), or null when it is not one. */
function parseV6(text: string): number[] | null {
  let head = text;
  const tail: number[] = [];
  // A trailing dotted IPv4 (::ffff:1.2.3.4) becomes the last two groups.
  if (head.includes(".")) {
    const lastColon = head.lastIndexOf(":");
    const v4 = parseV4(head.slice(lastColon + 1));
    if (v4 === null) return null;
    tail.push(Math.floor(v4 / 65536), v4 % 65536);
    head = head.slice(0, lastColon + 1);
    if (!head.endsWith("::")) head = head.slice(0, -1);
  }
  const halves = head.split("::");
  if (halves.length > 2) return null;
  const toGroups = (s: string) => (s === "" ? [] : s.split(":"));
  const left = toGroups(halves[0] ?? "");
  const right = halves.length === 2 ? toGroups(halves[1] ?? "") : [];
  const groups: number[] = [];
  for (const g of [...left, ...right]) {
    if (!/^[0-9a-f]{1,4}$/i.test(g)) return null;
  }
  const explicit = left.length + right.length + tail.length;
  if (halves.length === 1 && explicit !== 8) return null;
  if (halves.length === 2 && explicit > 7) return null;
  for (const g of left) groups.push(Number.parseInt(g, 16));
  for (let i = 0; i < 8 - explicit; i += 1) groups.push(0);
  for (const g of right) groups.push(Number.parseInt(g, 16));
  groups.push(...tail);
  return groups.length === 8 ? groups : null;
}

/** Why an IPv6 address is refused, or null when it is global unicast. */
function v6Refusal(g: number[]): string | null {
  const [g0 = 0, g1 = 0, g2 = 0, g3 = 0, g4 = 0, g5 = 0, g6 = 0, g7 = 0] = g;
  const embeddedV4 = g6 * 65536 + g7;
  const zeroPrefix = g0 === 0 && g1 === 0 && g2 === 0 && g3 === 0 && g4 === 0;
  // ::ffff:a.b.c.d (mapped) and ::a.b.c.d (compatible, deprecated): the IPv4 address is what is reached.
  if (zeroPrefix && (g5 === 0xffff || g5 === 0)) {
    if (g5 === 0 && g6 === 0 && (g7 === 0 || g7 === 1)) return g7 === 1 ? "loopback" : "unspecified";
    return v4Refusal(embeddedV4) ?? (g5 === 0 ? "IPv4-compatible (deprecated)" : null);
  }
  // 64:ff9b::/96 (NAT64): the embedded IPv4 address is what is reached, and a public one gains nothing.
  if (g0 === 0x64 && g1 === 0xff9b) return "NAT64";
  if (g0 === 0xfd00 && g1 === 0x0ec2 && embeddedV4 === 0x254) return "cloud metadata";
  // Only 2000::/3 is global unicast; inside it, the special blocks that tunnel or document.
  if ((g0 & 0xe000) !== 0x2000) {
    if ((g0 & 0xfe00) === 0xfc00) return "unique local (private)";
    if ((g0 & 0xffc0) === 0xfe80) return "link-local";
    if ((g0 & 0xff00) === 0xff00) return "multicast";
    return "reserved";
  }
  if (g0 === 0x2001 && g1 < 0x0200) return "IETF special-purpose (Teredo, benchmarking, ORCHID)";
  if (g0 === 0x2001 && g1 === 0x0db8) return "documentation";
  if (g0 === 0x2002) return "6to4 (embeds an IPv4 address)";
  return null;
}

/** Why a parsed URL host that is an IP literal is refused; undefined when the host is a name. */
function ipLiteralRefusal(hostname: string): string | null | undefined {
  if (hostname.startsWith("[") && hostname.endsWith("]")) {
    const groups = parseV6(hostname.slice(1, -1));
    return groups ? v6Refusal(groups) : "unparseable IPv6";
  }
  const v4 = parseV4(hostname);
  if (v4 !== null) return v4Refusal(v4);
  // WHATWG parsing already turned every numeric IPv4 spelling into dotted decimal; a last all-numeric label
  // that is still here is not a valid address and not a name either.
  if (/^[0-9.]+$/.test(hostname) || /\.(0x[0-9a-f]*|\d+)$/i.test(hostname)) return "unparseable IPv4";
  return undefined;
}

export function checkWebhookUrl(input: string, options: SsrfOptions): SsrfCheck {
  if (input.length > MAX_WEBHOOK_URL_LENGTH) {
    return refuse("url_too_long", `The URL must be at most ${MAX_WEBHOOK_URL_LENGTH} characters.`);
  }
  let url: URL;
  try {
    url = new URL(input);
  } catch {
    return refuse("invalid_url", "The URL is not a valid absolute URL.");
  }
  if (url.username !== "" || url.password !== "") {
    return refuse("credentials_in_url", "The URL must not carry a user name or password.");
  }
  // WHATWG parsing lower-cases the host and removes a trailing dot's ambiguity only partly: "localhost." is
  // the same name as "localhost".
  const hostname = url.hostname.replace(/\.$/, "");
  const isLocalHost = LOCAL_HTTP_HOSTS.has(hostname);
  if (url.protocol === "http:") {
    if (!(options.allowLocalHttp && isLocalHost)) {
      return refuse(
        "scheme_not_allowed",
        options.allowLocalHttp
          ? "Only https URLs are allowed (plain http only to localhost in local development)."
          : "Only https URLs are allowed.",
      );
    }
    return { ok: true };
  }
  if (url.protocol !== "https:") return refuse("scheme_not_allowed", "Only https URLs are allowed.");
  if (hostname === "") return refuse("invalid_url", "The URL has no host.");
  // An empty label ("localhost..", "db.internal..", "a..b") is no DNS name, and the suffix rules below would
  // not see the name a lenient resolver makes of it ("localhost..": "localhost"): refused whole.
  if (!hostname.startsWith("[") && hostname.split(".").includes("")) {
    return refuse("invalid_url", "The URL's host name has an empty label.");
  }

  const ipRefusal = ipLiteralRefusal(hostname);
  if (ipRefusal !== undefined) {
    if (ipRefusal === null) return { ok: true };
    return refuse("private_address", `The URL's address is not publicly routable (${ipRefusal}).`);
  }
  if (
    hostname === "localhost" ||
    hostname === "metadata" ||
    hostname === "metadata.google.internal" ||
    !hostname.includes(".") ||
    INTERNAL_SUFFIXES.some((suffix) => hostname.endsWith(suffix))
  ) {
    return refuse("internal_hostname", "The URL's host name is internal to a network, not a public name.");
  }
  return { ok: true };
}
