import { describe, expect, test } from "vitest";
import { checkEndpointUrl } from "../../functions/content/endpointUrl";

// The rule for a partner-supplied endpoint our Workers will call: https to a public host only; plain http
// (to loopback only) when the deployment allows it for dev and tests. Production's policy is the strict one.

const production = { allowLocalHttp: false };
const dev = { allowLocalHttp: true };

describe("checkEndpointUrl", () => {
  test("an https origin passes, normalised to the origin", () => {
    expect(checkEndpointUrl("https://abc.r2.cloudflarestorage.com/", production)).toEqual({
      ok: true,
      url: "https://abc.r2.cloudflarestorage.com",
    });
    expect(checkEndpointUrl("https://S3.Eu-West-1.Amazonaws.com:443", production)).toEqual({
      ok: true,
      url: "https://s3.eu-west-1.amazonaws.com",
    });
    expect(checkEndpointUrl("https://93.184.216.34", production).ok).toBe(true);
  });

  const refusals: [string, string][] = [
    ["http://s3.example.com", "https_required"],
    ["http://127.0.0.1:9000", "https_required"],
    ["ftp://s3.example.com", "https_required"],
    ["https://127.0.0.1", "private_address"],
    ["https://localhost", "internal_hostname"],
    ["https://bucket.localhost", "internal_hostname"],
    ["https://minio.internal", "internal_hostname"],
    ["https://localhost..", "not_a_url"],
    ["https://10.0.0.1", "private_address"],
    ["https://172.16.5.4", "private_address"],
    ["https://192.168.0.1", "private_address"],
    ["https://169.254.169.254", "private_address"],
    ["https://100.64.0.1", "private_address"],
    ["https://0.0.0.0", "private_address"],
    // Other spellings of 127.0.0.1 are normalised by the URL parser before the check.
    ["https://2130706433", "private_address"],
    ["https://0x7f.1", "private_address"],
    ["https://[::1]", "private_address"],
    ["https://[::ffff:10.0.0.1]", "private_address"],
    ["https://[fe80::1]", "private_address"],
    ["https://[fd12:3456::1]", "private_address"],
    ["https://user:pass@s3.example.com", "credentials_in_url"],
    ["https://s3.example.com/bucket", "path_or_query_not_allowed"],
    ["https://s3.example.com/?x=1", "path_or_query_not_allowed"],
    ["https://s3.example.com/#frag", "path_or_query_not_allowed"],
    ["s3.example.com", "not_a_url"],
    ["", "not_a_url"],
  ];
  for (const [url, reason] of refusals) {
    test(`production refuses ${url || "(empty)"}: ${reason}`, () => {
      const check = checkEndpointUrl(url, production);
      expect(check.ok).toBe(false);
      if (!check.ok) expect(check.reason).toBe(reason);
    });
  }

  test("dev allows plain http to loopback only; other private addresses stay refused", () => {
    expect(checkEndpointUrl("http://127.0.0.1:4568", dev)).toEqual({
      ok: true,
      url: "http://127.0.0.1:4568",
    });
    expect(checkEndpointUrl("http://localhost:4568/", dev)).toEqual({
      ok: true,
      url: "http://localhost:4568",
    });
    expect(checkEndpointUrl("http://[::1]:4568", dev).ok).toBe(true);
    expect(checkEndpointUrl("http://s3.example.com", dev)).toMatchObject({
      ok: false,
      reason: "https_required",
    });
    expect(checkEndpointUrl("http://10.0.0.1", dev)).toMatchObject({ ok: false, reason: "https_required" });
    expect(checkEndpointUrl("https://10.0.0.1", dev)).toMatchObject({ ok: false, reason: "private_address" });
  });
});
