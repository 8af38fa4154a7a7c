import type { Destination, DestinationKind } from "../../shared/destinations";
import { ApiError } from "../../shared/errors";
import type { RelayEvent } from "../../shared/schemas/relay";
import { audit } from "../audit/writeAudit";
import { found, type VerbContext } from "../context";
import { requireLayer } from "../projects/layers";
import { visibleProject } from "../projects/verbs";
import { type RelayEndpoints, type SendDeps, sendToDestination } from "../relay/send";
import { loadDestination } from "./store";
import { type KeyringSource, keyringOf, noDestination, readingTokens } from "./verbs";

// A test-send: one synthetic event sent with a destination's stored settings, the platform's answer
// returned. Three steps, like the relay's: load (a short read), call the platform (no transaction: the
// call may take up to the test timeout, and a transaction or pooled connection held that long would
// starve the API), record (a short write: the audit row). The caller runs each step where it belongs
// (mutationWithCall in the API Worker).

export interface TestSendAnswer {
  object: "destination_test";
  kind: DestinationKind;
  outcome: "delivered" | "retry" | "rejected" | "skipped";
  platformStatus: number | null;
  error: string | null;
  eventId: string;
  sentAt: string;
}

/** Step 1, in a short transaction: the destination, its token decrypted (in memory only). */
export async function loadTestSend(
  ctx: VerbContext,
  projectId: string,
  kind: DestinationKind,
  keys: KeyringSource,
): Promise<Destination> {
  await visibleProject(ctx, projectId);
  await requireLayer(ctx.db, projectId, "attribution");
  if (kind === "apple-search-ads") {
    throw new ApiError(
      "test_send_unsupported",
      "Apple Search Ads attribution has no test event: it needs an attribution token from a real device.",
    );
  }
  const keyring = keyringOf(ctx, keys);
  const destination = await readingTokens(ctx, () => loadDestination(ctx.db, projectId, kind, keyring));
  return found(destination, noDestination(projectId, kind));
}

/** The synthetic event of a test-send: recognisable on the platform, no real person's data. */
function syntheticEvent(now: Date): RelayEvent {
  return {
    eventId: `layers_test_${crypto.randomUUID()}`,
    name: "purchase",
    userId: "layers-test-send",
    timestamp: now.toISOString(),
    appId: null,
    os: null,
    osVersion: null,
    deviceModel: null,
    browser: null,
    country: null,
    emailSha256: null,
    phoneSha256: null,
    phoneE164Sha256: null,
    properties: { value: 1, currency: "USD", layers_test_send: true },
    consentAds: null,
    // A website event, so it carries the two fields Meta requires of one.
    userAgent: "Layers-Test-Send/1.0",
    pageUrl: "https://example.com/layers-test-send",
  };
}

/** Step 2, outside any transaction: the platform call. Its failures are answers, not errors. */
export async function sendTestEvent(
  destination: Destination,
  now: Date,
  endpoints: RelayEndpoints,
  deps: SendDeps,
): Promise<TestSendAnswer> {
  const event = syntheticEvent(now);
  const result = await sendToDestination(destination, [event], endpoints, deps);
  return {
    object: "destination_test",
    kind: destination.kind,
    outcome: result.kind === "delivered" && result.sent === 0 ? "skipped" : result.kind,
    platformStatus: result.status,
    error:
      result.kind !== "delivered"
        ? result.error
        : result.sent === 0
          ? `Left out before sending: ${result.skipped.map((k) => k.reason).join(", ")}`
          : null,
    eventId: event.eventId,
    sentAt: now.toISOString(),
  };
}

/** Step 3, in a short transaction: the audit row of the send. */
export async function recordTestSend(
  ctx: VerbContext,
  projectId: string,
  answer: TestSendAnswer,
): Promise<void> {
  await audit(
    ctx,
    "destination.test_sent",
    { type: "destination", id: `${projectId}/${answer.kind}` },
    { after: { outcome: answer.outcome, platformStatus: answer.platformStatus, eventId: answer.eventId } },
  );
}
