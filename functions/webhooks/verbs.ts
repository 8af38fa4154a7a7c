import type { Keyring } from "../../shared/destinations";
import { ApiError } from "../../shared/errors";
import { newId } from "../../shared/ids";
import { audit } from "../audit/writeAudit";
import { found, transactionOf, type VerbContext } from "../context";
import { type KeyringSource, keyringOf, readingTokens } from "../destinations/verbs";
import { getProject } from "../projects/store";
import { isWebhookEventType, webhookBody } from "./events";
import { emitWebhookEvent } from "./outbox";
import { encryptWebhookSecret, signingSecrets } from "./secrets";
import { type Fetch, type SendWebhookResult, sendWebhook } from "./send";
import { generateWebhookSecret } from "./sign";
import { checkWebhookUrl, MAX_WEBHOOK_URL_LENGTH } from "./ssrf";
import {
  countLiveEndpointsLocked,
  deleteEndpoint,
  type EndpointPatch,
  getEndpoint,
  insertAttempt,
  insertEndpoint,
  listAttempts,
  listDeliveries,
  listEndpoints,
  loadEndpointSecrets,
  requeueDelivery,
  rotateEndpointSecret,
  updateEndpoint,
  type WebhookAttemptView,
  type WebhookDeliveryView,
  type WebhookEndpoint,
} from "./store";

// Webhook endpoints: where an org's events are sent. Every change is audited; the signing secret is shown
// once (in the answer that creates or rotates it) and otherwise exists only as ciphertext — never in an
// audit row, a stored idempotent answer (its field is `secret`, which the idempotency layer stores as null)
// or a log line.

/** Every limit of the resource, in one place (the README's table is written from these). */
export const WEBHOOK_LIMITS = {
  /** Live (not deleted) endpoints per org. */
  maxEndpointsPerOrg: 20,
  maxUrlLength: MAX_WEBHOOK_URL_LENGTH,
  maxDescriptionLength: 500,
  /** Event types one endpoint may list (none = every type). */
  maxEventTypes: 50,
  /** Rotation: how long the previous secret keeps signing, default and maximum. */
  defaultRotationGraceSeconds: 24 * 60 * 60,
  maxRotationGraceSeconds: 7 * 24 * 60 * 60,
  /** How far back the attempt log goes. */
  attemptLogDays: 30,
} as const;

/** An endpoint as the API shows it and as its audit rows record it: never a secret or its ciphertext. */
export function webhookEndpointJson(e: WebhookEndpoint) {
  return {
    id: e.id,
    object: "webhook_endpoint" as const,
    url: e.url,
    description: e.description,
    eventTypes: e.eventTypes,
    projectId: e.projectId,
    enabled: e.enabled,
    disabledReason: e.disabledReason,
    disabledAt: e.disabledAt?.toISOString() ?? null,
    failingSince: e.failingSince?.toISOString() ?? null,
    previousSecretExpiresAt: e.previousSecretExpiresAt?.toISOString() ?? null,
    createdAt: e.createdAt.toISOString(),
    updatedAt: e.updatedAt.toISOString(),
  };
}

export function webhookDeliveryJson(d: WebhookDeliveryView) {
  return {
    id: d.messageId,
    object: "webhook_message" as const,
    endpointId: d.endpointId,
    eventType: d.eventType,
    payload: d.payload,
    status: d.status,
    attempts: d.attempts,
    nextAttemptAt: d.nextAttemptAt?.toISOString() ?? null,
    lastAttemptAt: d.lastAttemptAt?.toISOString() ?? null,
    lastStatusCode: d.lastStatusCode,
    createdAt: d.createdAt.toISOString(),
  };
}

export function webhookAttemptJson(a: WebhookAttemptView) {
  return {
    id: a.id,
    object: "webhook_attempt" as const,
    endpointId: a.endpointId,
    messageId: a.messageId,
    attemptedAt: a.attemptedAt.toISOString(),
    durationMs: a.durationMs,
    statusCode: a.statusCode,
    errorCode: a.errorCode,
    responseExcerpt: a.responseExcerpt,
  };
}

/** How URLs are checked: plain http to localhost only where the deployment allows it (dev and tests). */
export interface UrlPolicy {
  allowLocalHttp: boolean;
}

/** The SSRF guard at the door: every refused class is a 400 with its reason, and nothing is stored. */
function checkUrl(url: string, policy: UrlPolicy): void {
  const verdict = checkWebhookUrl(url, policy);
  if (!verdict.ok) {
    throw new ApiError("webhook_url_refused", verdict.message, {
      details: [{ field: "url", reason: verdict.code, message: verdict.message }],
    });
  }
}

function checkEventTypes(types: string[]): string[] {
  const unknown = types.filter((t) => !isWebhookEventType(t));
  if (unknown.length > 0) {
    throw new ApiError("invalid_request", "Unknown event type; see GET /v1/webhook-event-types.", {
      details: unknown.map((t) => ({
        field: "eventTypes",
        message: `Unknown event type "${t.slice(0, 64)}".`,
      })),
    });
  }
  return [...new Set(types)].sort();
}

async function checkProject(ctx: VerbContext, projectId: string | null | undefined): Promise<void> {
  if (projectId) found(await getProject(ctx.db, projectId), `No project ${projectId}.`);
}

export async function visibleEndpoint(ctx: VerbContext, id: string): Promise<WebhookEndpoint> {
  return found(await getEndpoint(ctx.db, id), `No webhook endpoint ${id}.`);
}

export interface CreateEndpointInput {
  url: string;
  description?: string | null | undefined;
  eventTypes?: string[] | undefined;
  projectId?: string | null | undefined;
  enabled?: boolean | undefined;
}

/** Creates an endpoint and its signing secret; the secret is returned here and never again. */
export async function createWebhookEndpoint(
  ctx: VerbContext,
  input: CreateEndpointInput,
  deps: { keys: KeyringSource; urls: UrlPolicy },
): Promise<{ endpoint: WebhookEndpoint; secret: string }> {
  checkUrl(input.url, deps.urls);
  const eventTypes = checkEventTypes(input.eventTypes ?? []);
  await checkProject(ctx, input.projectId);
  const keyring = keyringOf(ctx, deps.keys);
  const live = await countLiveEndpointsLocked(ctx.db, ctx.orgId);
  if (live >= WEBHOOK_LIMITS.maxEndpointsPerOrg) {
    throw new ApiError(
      "conflict",
      `This org has ${WEBHOOK_LIMITS.maxEndpointsPerOrg} webhook endpoints, the most it may have; delete one first.`,
    );
  }
  const id = newId("whe");
  const secret = generateWebhookSecret();
  const sealed = await encryptWebhookSecret(keyring, secret, { orgId: ctx.orgId, endpointId: id });
  const endpoint = await insertEndpoint(
    ctx.db,
    ctx.orgId,
    {
      id,
      url: input.url,
      description: input.description ?? null,
      eventTypes,
      projectId: input.projectId ?? null,
      enabled: input.enabled ?? true,
      secret: sealed,
    },
    ctx.now,
  );
  await audit(
    ctx,
    "webhook_endpoint.created",
    { type: "webhook_endpoint", id },
    { after: webhookEndpointJson(endpoint) },
  );
  return { endpoint, secret };
}

export function listWebhookEndpoints(
  ctx: VerbContext,
  page: { limit: number; startingAfter?: string | undefined },
): Promise<{ data: WebhookEndpoint[]; hasMore: boolean }> {
  return listEndpoints(ctx.db, page);
}

/**
 * Changes an endpoint. Switching it off by hand emits `webhook_endpoint.disabled` (reason `manual`) to the
 * org's other endpoints, as the webhooks Worker does when it disables one.
 */
export async function changeWebhookEndpoint(
  ctx: VerbContext,
  id: string,
  patch: EndpointPatch,
  deps: { urls: UrlPolicy },
): Promise<WebhookEndpoint> {
  await visibleEndpoint(ctx, id);
  if (patch.url !== undefined) checkUrl(patch.url, deps.urls);
  const eventTypes = patch.eventTypes === undefined ? undefined : checkEventTypes(patch.eventTypes);
  await checkProject(ctx, patch.projectId);
  const changed = found(
    await updateEndpoint(ctx.db, id, { ...patch, eventTypes }, ctx.now),
    `No webhook endpoint ${id}.`,
  );
  await audit(
    ctx,
    "webhook_endpoint.updated",
    { type: "webhook_endpoint", id },
    { before: webhookEndpointJson(changed.before), after: webhookEndpointJson(changed.after) },
  );
  if (changed.before.enabled && !changed.after.enabled) {
    await emitWebhookEvent(transactionOf(ctx), {
      orgId: ctx.orgId,
      type: "webhook_endpoint.disabled",
      payload: {
        webhookEndpointId: id,
        reason: "manual",
        disabledAt: ctx.now.toISOString(),
        failingSince: changed.before.failingSince?.toISOString() ?? null,
        link: `/v1/webhook-endpoints/${id}`,
      },
      now: ctx.now,
    });
  }
  return changed.after;
}

export async function deleteWebhookEndpoint(ctx: VerbContext, id: string): Promise<void> {
  const removed = found(await deleteEndpoint(ctx.db, id, ctx.now), `No webhook endpoint ${id}.`);
  await audit(
    ctx,
    "webhook_endpoint.deleted",
    { type: "webhook_endpoint", id },
    { before: webhookEndpointJson(removed) },
  );
}

/**
 * A new signing secret now; the previous one keeps signing beside it (two signatures per delivery) for
 * `graceSeconds`, so receivers can switch without dropping a message. Rotating again within a grace
 * period ends the older secret at once: only the last two are ever kept.
 */
export async function rotateWebhookSecret(
  ctx: VerbContext,
  id: string,
  graceSeconds: number,
  keys: KeyringSource,
): Promise<{ endpoint: WebhookEndpoint; secret: string }> {
  const before = await visibleEndpoint(ctx, id);
  const keyring = keyringOf(ctx, keys);
  const secret = generateWebhookSecret();
  const sealed = await encryptWebhookSecret(keyring, secret, { orgId: ctx.orgId, endpointId: id });
  const expiresAt = new Date(ctx.now.getTime() + graceSeconds * 1000);
  const endpoint = found(
    await rotateEndpointSecret(ctx.db, id, sealed, expiresAt, ctx.now),
    `No webhook endpoint ${id}.`,
  );
  await audit(
    ctx,
    "webhook_endpoint.secret_rotated",
    { type: "webhook_endpoint", id },
    { before: webhookEndpointJson(before), after: webhookEndpointJson(endpoint) },
  );
  return { endpoint, secret };
}

export async function listEndpointAttempts(
  ctx: VerbContext,
  id: string,
  page: { limit: number; startingAfter?: string | undefined },
): Promise<{ data: WebhookAttemptView[]; hasMore: boolean }> {
  await visibleEndpoint(ctx, id);
  const since = new Date(ctx.now.getTime() - WEBHOOK_LIMITS.attemptLogDays * 86_400_000);
  return listAttempts(ctx.db, id, { ...page, since });
}

export async function listEndpointMessages(
  ctx: VerbContext,
  id: string,
  page: {
    limit: number;
    startingAfter?: string | undefined;
    status?: "pending" | "succeeded" | "failed" | undefined;
  },
): Promise<{ data: WebhookDeliveryView[]; hasMore: boolean }> {
  await visibleEndpoint(ctx, id);
  return listDeliveries(ctx.db, id, page);
}

/** Sends one message to one endpoint again (whatever its delivery's state), through the normal path. */
export async function resendWebhookMessage(
  ctx: VerbContext,
  id: string,
  messageId: string,
): Promise<WebhookDeliveryView> {
  const endpoint = await visibleEndpoint(ctx, id);
  if (!endpoint.enabled) {
    throw new ApiError("conflict", `Webhook endpoint ${id} is disabled; enable it before re-sending.`);
  }
  const delivery = found(
    await requeueDelivery(ctx.db, id, messageId, ctx.now),
    `No message ${messageId} for webhook endpoint ${id}.`,
  );
  await audit(
    ctx,
    "webhook_message.resent",
    { type: "webhook_endpoint", id },
    { after: { messageId, eventType: delivery.eventType } },
  );
  return delivery;
}

// The test send, in the three steps of mutationWithCall (no transaction held while the receiver answers).

export interface LoadedTestSend {
  endpointId: string;
  url: string;
  secrets: string[];
}

/** Step 1, in a short transaction: the endpoint and its active secrets (decrypted, in memory only). */
export async function loadWebhookTest(
  ctx: VerbContext,
  id: string,
  keys: KeyringSource,
): Promise<LoadedTestSend> {
  const row = found(await loadEndpointSecrets(ctx.db, id), `No webhook endpoint ${id}.`);
  const keyring: Keyring = keyringOf(ctx, keys);
  const secrets = await readingTokens(ctx, () => signingSecrets(keyring, row, ctx.now));
  return { endpointId: id, url: row.url, secrets };
}

export interface WebhookTestAnswer {
  object: "webhook_test";
  endpointId: string;
  messageId: string;
  eventType: "webhook.test";
  success: boolean;
  statusCode: number | null;
  durationMs: number;
  errorCode: string | null;
  responseExcerpt: string | null;
  sentAt: string;
}

/**
 * Step 2, outside any transaction: one signed `webhook.test` POST (the same sender and SSRF guard as every
 * delivery). Its failures are answers, not errors.
 */
export async function sendWebhookTest(
  loaded: LoadedTestSend,
  now: Date,
  options: { timeoutMs: number; allowLocalHttp: boolean; fetch?: Fetch | undefined },
): Promise<WebhookTestAnswer> {
  const messageId = newId("msg");
  const body = webhookBody({
    eventType: "webhook.test",
    createdAt: now,
    payload: { webhookEndpointId: loaded.endpointId, test: true },
  });
  const result: SendWebhookResult = await sendWebhook({
    url: loaded.url,
    secrets: loaded.secrets,
    messageId,
    timestamp: now,
    body,
    timeoutMs: options.timeoutMs,
    allowLocalHttp: options.allowLocalHttp,
    ...(options.fetch ? { fetch: options.fetch } : {}),
  });
  return {
    object: "webhook_test",
    endpointId: loaded.endpointId,
    messageId,
    eventType: "webhook.test",
    success: result.errorCode === null,
    statusCode: result.statusCode,
    durationMs: result.durationMs,
    errorCode: result.errorCode,
    responseExcerpt: result.responseExcerpt,
    sentAt: now.toISOString(),
  };
}

/** Step 3, in a short transaction: the attempt in the endpoint's log, and the audit row. */
export async function recordWebhookTest(ctx: VerbContext, answer: WebhookTestAnswer): Promise<void> {
  await insertAttempt(ctx.db, ctx.orgId, {
    id: newId("wha"),
    endpointId: answer.endpointId,
    messageId: null,
    attemptedAt: new Date(answer.sentAt),
    durationMs: answer.durationMs,
    statusCode: answer.statusCode,
    errorCode: answer.errorCode,
    responseExcerpt: answer.responseExcerpt,
  });
  await audit(
    ctx,
    "webhook_endpoint.test_sent",
    { type: "webhook_endpoint", id: answer.endpointId },
    { after: { messageId: answer.messageId, statusCode: answer.statusCode, errorCode: answer.errorCode } },
  );
}
