import { describe, expect, it } from "vitest";
import { checkWebhookUrl, MAX_WEBHOOK_URL_LENGTH } from "../../functions/webhooks/ssrf";

const prod = { allowLocalHttp: false };
const dev = { allowLocalHttp: true };

describe("checkWebhookUrl", () => {
  it.each([
    "https://hooks.example.com/layers",
    "https://api.partner.io:8443/webhooks?x=1",
    "https://8.8.8.8/hook",
    "https://[2606:4700:4700::1111]/hook",
    "https://1.1.1.1/",
    "https://xn--bcher-kva.de/hook",
  ])("accepts the public URL %s", (url) => {
    expect(checkWebhookUrl(url, prod)).toEqual({ ok: true });
  });

  it.each([
    // [url, code] — each class the issue names
    ["http://hooks.example.com/", "scheme_not_allowed"],
    ["ftp://hooks.example.com/", "scheme_not_allowed"],
    ["javascript:alert(1)", "scheme_not_allowed"],
    ["file:///etc/passwd", "scheme_not_allowed"],
    ["not a url", "invalid_url"],
    ["https://user:pass@hooks.example.com/", "credentials_in_url"],
    ["https://user@hooks.example.com/", "credentials_in_url"],
    // IPv4: private, loopback, link-local/metadata, CGNAT, this-network, multicast, reserved, broadcast
    ["https://10.1.2.3/", "private_address"],
    ["https://172.16.0.1/", "private_address"],
    ["https://172.31.255.255/", "private_address"],
    ["https://192.168.1.1/", "private_address"],
    ["https://127.0.0.1/", "private_address"],
    ["https://127.255.0.9/", "private_address"],
    ["https://169.254.169.254/latest/meta-data/", "private_address"],
    ["https://100.64.0.1/", "private_address"],
    ["https://100.127.255.254/", "private_address"],
    ["https://0.0.0.0/", "private_address"],
    ["https://0.1.2.3/", "private_address"],
    ["https://224.0.0.1/", "private_address"],
    ["https://239.255.255.250/", "private_address"],
    ["https://240.0.0.1/", "private_address"],
    ["https://255.255.255.255/", "private_address"],
    ["https://192.0.2.10/", "private_address"],
    ["https://198.18.0.1/", "private_address"],
    // IPv4 in other spellings (decimal, hex, octal, short forms)
    ["https://2130706433/", "private_address"],
    ["https://0x7f000001/", "private_address"],
    ["https://0177.0.0.1/", "private_address"],
    ["https://0x7f.1/", "private_address"],
    ["https://127.1/", "private_address"],
    ["https://2852039166/", "private_address"],
    ["https://0xa9.0xfe.0xa9.0xfe/", "private_address"],
    ["https://017700000001/", "private_address"],
    // IPv6: loopback, unspecified, ULA, link-local, multicast, mapped/compatible/NAT64/6to4, metadata
    ["https://[::1]/", "private_address"],
    ["https://[::]/", "private_address"],
    ["https://[fc00::1]/", "private_address"],
    ["https://[fd12:3456::1]/", "private_address"],
    ["https://[fe80::1]/", "private_address"],
    ["https://[ff02::1]/", "private_address"],
    ["https://[::ffff:127.0.0.1]/", "private_address"],
    ["https://[::ffff:7f00:1]/", "private_address"],
    ["https://[::ffff:169.254.169.254]/", "private_address"],
    ["https://[::ffff:10.0.0.1]/", "private_address"],
    ["https://[::127.0.0.1]/", "private_address"],
    ["https://[64:ff9b::a9fe:a9fe]/", "private_address"],
    ["https://[2002:7f00:1::]/", "private_address"],
    ["https://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/", "private_address"],
    ["https://[2001:db8::1]/", "private_address"],
    ["https://[fd00:ec2::254]/", "private_address"],
    // Names that mean the machine itself, an internal network or a metadata service
    ["https://localhost/", "internal_hostname"],
    ["https://LOCALHOST./", "internal_hostname"],
    ["https://api.localhost/", "internal_hostname"],
    ["https://metadata.google.internal/computeMetadata/v1/", "internal_hostname"],
    ["https://metadata/", "internal_hostname"],
    ["https://db.internal/", "internal_hostname"],
    ["https://printer.local/", "internal_hostname"],
    ["https://router.home.arpa/", "internal_hostname"],
    ["https://intranet/", "internal_hostname"],
    // More than one trailing dot (or any empty label) is no name: the suffix rules must not be dodged by it
    ["https://localhost../", "invalid_url"],
    ["https://metadata.google.internal../", "invalid_url"],
    ["https://db.internal.../", "invalid_url"],
    ["https://.localhost./", "invalid_url"],
    ["https://printer..local/", "invalid_url"],
    [`https://hooks.example.com/${"a".repeat(MAX_WEBHOOK_URL_LENGTH)}`, "url_too_long"],
  ])("refuses %s (%s)", (url, code) => {
    const result = checkWebhookUrl(url, prod);
    expect(result).toMatchObject({ ok: false, code });
    // Allowing local http in development loosens nothing for these.
    if (!url.startsWith("http://")) expect(checkWebhookUrl(url, dev)).toMatchObject({ ok: false, code });
  });

  it("allows plain http to localhost only when local http is allowed (dev, tests)", () => {
    for (const url of ["http://localhost:8787/hook", "http://127.0.0.1:9000/", "http://[::1]:9000/"]) {
      expect(checkWebhookUrl(url, dev)).toEqual({ ok: true });
      expect(checkWebhookUrl(url, prod)).toMatchObject({ ok: false, code: "scheme_not_allowed" });
    }
    for (const url of ["http://10.0.0.1/", "http://hooks.example.com/", "http://169.254.169.254/"]) {
      expect(checkWebhookUrl(url, dev)).toMatchObject({ ok: false, code: "scheme_not_allowed" });
    }
  });
});
