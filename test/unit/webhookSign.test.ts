import { Webhook } from "standardwebhooks";
import { describe, expect, it } from "vitest";
import { generateWebhookSecret, isWebhookSecret, webhookHeaders } from "../../functions/webhooks/sign";

// The published Standard Webhooks library (not our code) is the judge of our signatures.
describe("Standard Webhooks signing", () => {
  const body = JSON.stringify({ type: "webhook.test", data: { ok: true } });
  const now = () => Math.floor(Date.now() / 1000);

  it("issues whsec_ secrets of 24 random bytes that the library accepts", () => {
    const a = generateWebhookSecret();
    const b = generateWebhookSecret();
    expect(a).toMatch(/^whsec_[A-Za-z0-9+/]{32}$/);
    expect(a).not.toBe(b);
    expect(isWebhookSecret(a)).toBe(true);
    expect(isWebhookSecret("whsec_short")).toBe(false);
    expect(isWebhookSecret(a.slice(6))).toBe(false);
    expect(() => new Webhook(a)).not.toThrow();
  });

  it("signs so the library verifies, with every active secret (rotation grace)", async () => {
    const current = generateWebhookSecret();
    const previous = generateWebhookSecret();
    const headers = await webhookHeaders({
      secrets: [current, previous],
      messageId: "msg_1",
      timestampSeconds: now(),
      body,
    });
    expect(headers["webhook-id"]).toBe("msg_1");
    expect(headers["webhook-signature"].split(" ")).toHaveLength(2);
    for (const secret of [current, previous]) {
      expect(new Webhook(secret).verify(body, headers)).toEqual(JSON.parse(body));
    }
    // A receiver that only knows a third secret refuses.
    expect(() => new Webhook(generateWebhookSecret()).verify(body, headers)).toThrow();
  });

  it("a tampered body, another id or an old timestamp fails verification", async () => {
    const secret = generateWebhookSecret();
    const headers = await webhookHeaders({
      secrets: [secret],
      messageId: "msg_2",
      timestampSeconds: now(),
      body,
    });
    const hook = new Webhook(secret);
    expect(() => hook.verify(body.replace("true", "false"), headers)).toThrow();
    expect(() => hook.verify(body, { ...headers, "webhook-id": "msg_3" })).toThrow();
    const old = await webhookHeaders({
      secrets: [secret],
      messageId: "msg_2",
      timestampSeconds: now() - 600,
      body,
    });
    expect(() => hook.verify(body, old)).toThrow(/timestamp/i);
  });

  it("equals the library's own signature byte for byte", async () => {
    const secret = generateWebhookSecret();
    const at = new Date(1_700_000_000_000);
    const headers = await webhookHeaders({
      secrets: [secret],
      messageId: "msg_4",
      timestampSeconds: 1_700_000_000,
      body,
    });
    expect(headers["webhook-signature"]).toBe(new Webhook(secret).sign("msg_4", at, body));
  });

  it("refuses to sign without a secret or with a malformed one", async () => {
    await expect(
      webhookHeaders({ secrets: [], messageId: "m", timestampSeconds: 1, body }),
    ).rejects.toThrow();
    await expect(
      webhookHeaders({ secrets: ["not-a-secret"], messageId: "m", timestampSeconds: 1, body }),
    ).rejects.toThrow();
  });
});
