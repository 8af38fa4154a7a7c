import { describe, expect, test } from "vitest";
import { REDACTED, redactFields, redactText, redactUrl } from "../../functions/content/redact";

// What a partner sends with a content job is redacted before any log line or row: fields they mark
// sensitive, credentials, and the tokens inside URLs. The rest stays readable.

describe("redactUrl", () => {
  test("token-bearing parameters, userinfo and token fragments go; the rest of the URL stays", () => {
    expect(
      redactUrl("https://cdn.example.com/a/b.png?X-Amz-Signature=abc123&X-Amz-Credential=AKIA/x&w=200"),
    ).toBe("https://cdn.example.com/a/b.png?X-Amz-Signature=...&X-Amz-Credential=...&w=200");
    expect(redactUrl("https://user:pa55@example.com/login?next=%2Fhome")).toBe(
      "https://user:pa55@example.com/login?next=%2Fhome".replace("user:pa55@", ""),
    );
    expect(redactUrl("https://example.com/cb#access_token=zzz&state=1")).toBe("https://example.com/cb");
    // An innocently named parameter holding a long mixed token.
    expect(redactUrl("https://example.com/p?ref=a1b2c3d4e5f6g7h8i9j0k1l2m3")).toBe(
      "https://example.com/p?ref=...",
    );
    // Nothing secret: returned exactly as given.
    const plain = "https://shop.example.com/shoes/aurora?color=blue&size=42";
    expect(redactUrl(plain)).toBe(plain);
    expect(redactUrl("not a url")).toBe("not a url");
  });
});

describe("redactText", () => {
  test.each([
    ["Authorization: Bearer abc.def.ghi", "Authorization: Bearer abc.def.ghi", "abc.def.ghi"],
    ["key sk-proj-AbCdEfGhIjKlMnOpQrSt123", "", "sk-proj-AbCdEfGhIjKlMnOpQrSt123"],
    ["anthropic sk-ant-api03-AbCdEfGhIjKlMnOpQr", "", "sk-ant-api03-AbCdEfGhIjKlMnOpQr"],
    ["google AIzaSyA1234567890abcdefghijklmnop", "", "AIzaSyA1234567890abcdefghijklmnop"],
    ["aws AKIAIOSFODNN7EXAMPLE", "", "AKIAIOSFODNN7EXAMPLE"],
    ["our lp_live_0123456789abcdef", "", "lp_live_0123456789abcdef"],
    ["jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.sig_nature", "", "eyJzdWIiOiIxMjM0NTY3ODkwIn0"],
    ["login with password: hunter2 please", "", "hunter2"],
    ['{"api_key":"k-123456"}', "", "k-123456"],
    ["see https://x.example.com/f?token=s3cr3t-value now", "", "s3cr3t-value"],
  ])("%s", (input, _unused, secret) => {
    const out = redactText(input);
    expect(out).not.toContain(secret);
    expect(out).toContain(REDACTED);
  });

  test("ordinary copy is left alone", () => {
    const copy =
      "Launch the Aurora trail shoe: waterproof, 280 g, from $129. Visit https://shop.example.com/aurora";
    expect(redactText(copy)).toBe(copy);
  });

  test("runs in linear time on a long hostile string", () => {
    // 200k characters that almost match several patterns; a backtracking pattern would take minutes.
    const hostile = `${"sk-".repeat(20_000)}${"a=".repeat(20_000)}${"eyJ".repeat(20_000)}`;
    expect(redactText(hostile).length).toBeGreaterThan(0);
  });
});

describe("redactFields", () => {
  const job = {
    kind: "copy",
    brief: { text: "Our secret launch on 12 May", tone: "calm" },
    product: {
      name: "Aurora",
      description: "Internal codename Falcon",
      url: "https://x.example.com/p?token=abc",
    },
    storage: {
      accessKeyId: "AKIAIOSFODNN7EXAMPLE",
      secretAccessKey: "wJalrXUtnFEMI/K7MDENG",
      bucket: "media",
    },
    headers: { Authorization: "Bearer zzz", "X-Request-Id": "req_1" },
    references: ["ctr_1", "ctr_2"],
  };

  test("partner-marked paths, credential fields and URL tokens become '...'; everything else is kept", () => {
    const out = redactFields(job, { sensitive: ["brief.text", "product.description", "references.1"] });
    expect(out).toEqual({
      kind: "copy",
      brief: { text: REDACTED, tone: "calm" },
      product: { name: "Aurora", description: REDACTED, url: "https://x.example.com/p?token=..." },
      storage: { accessKeyId: REDACTED, secretAccessKey: REDACTED, bucket: "media" },
      headers: { Authorization: REDACTED, "X-Request-Id": "req_1" },
      references: ["ctr_1", REDACTED],
    });
    // The input is not changed.
    expect(job.brief.text).toBe("Our secret launch on 12 May");
    const text = JSON.stringify(out);
    for (const secret of [
      "secret launch",
      "Falcon",
      "AKIAIOSFODNN7EXAMPLE",
      "wJalrXUtnFEMI",
      "zzz",
      "token=abc",
    ]) {
      expect(text).not.toContain(secret);
    }
  });

  test("a __proto__ key stays a plain field and is redacted like any other", () => {
    const hostile = JSON.parse('{"__proto__": {"password": "p"}, "note": "ok"}') as unknown;
    const out = redactFields(hostile) as Record<string, unknown>;
    expect(Object.getPrototypeOf(out)).toBe(Object.prototype);
    expect(Object.hasOwn(out, "__proto__")).toBe(true);
    expect(JSON.stringify(out)).not.toContain('"p"');
  });
});
