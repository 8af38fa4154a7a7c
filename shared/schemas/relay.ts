import { z } from "zod";
import { DESTINATION_KINDS } from "../destinations";
import { INGEST_LIMITS } from "../limits";
import { propertiesSchema } from "./properties";

// The contract between the consumer (which enqueues) and the relay Worker (which sends): one message on the
// "relay" queue is one batch for one destination of one project, and becomes one platform call.
// Everything personal is already hashed. Transient fields exist only here, for the platform that needs
// them: `madid` (IDFA/GAID, Meta only, when the partner enabled it), `userAgent` (Meta website events
// only), `pageUrl` (Meta and TikTok) and `adServicesToken` (Apple only). None is ever written to a table:
// dead letters store the events with all of them removed (deliveries.ts withoutRelayOnlyFields).

const sha256 = z.string().regex(/^[0-9a-f]{64}$/);

/** Meta and TikTok take at most 1,000 events per call; a message never holds more. */
export const RELAY_MAX_EVENTS_PER_BATCH = 1000;

export const relayEventSchema = z.object({
  eventId: z.string().min(1).max(128),
  name: z.string().min(1).max(128),
  userId: z.string().min(1).max(256).nullable(),
  timestamp: z.iso.datetime(),
  appId: z.string().max(8192).nullable(),
  os: z.string().max(8192).nullable(),
  osVersion: z.string().max(8192).nullable(),
  deviceModel: z.string().max(8192).nullable(),
  /** Set by the edge's User-Agent parse for web events; null for app events. */
  browser: z.string().max(8192).nullable(),
  country: z.string().max(8).nullable(),
  emailSha256: sha256.nullable(),
  /** SHA-256 of the digits with country code, no "+" (Meta's rule, and what ingest stores). */
  phoneSha256: sha256.nullable(),
  /** SHA-256 of the E.164 form with "+" (TikTok's rule); only the edge saw the raw number to compute it. */
  phoneE164Sha256: sha256.nullable(),
  properties: propertiesSchema,
  consentAds: z.boolean().nullable(),
  madid: z.string().min(1).max(64).optional(),
  adServicesToken: z.string().min(1).max(4096).optional(),
  /** The raw User-Agent (≤ 512 characters): Meta's client_user_agent, for website events only. */
  userAgent: z.string().min(1).max(INGEST_LIMITS.maxUserAgentLength).optional(),
  /** The page URL without query or fragment: Meta's event_source_url, TikTok's page.url. */
  pageUrl: z.string().min(1).max(INGEST_LIMITS.maxPageUrlLength).optional(),
});
export type RelayEvent = z.infer<typeof relayEventSchema>;

export const relayMessageSchema = z.object({
  v: z.literal(1),
  /** Names the batch in the delivery log and the dead letters; stays the same across retries and replays. */
  batchId: z.string().min(1).max(64),
  orgId: z.string().min(1),
  projectId: z.string().min(1),
  destination: z.enum(DESTINATION_KINDS),
  enqueuedAt: z.iso.datetime(),
  /**
   * When the edge received these events (the events message's receivedAt); the erasure rule compares
   * deletion requests with it. Absent on replays of dead letters: then every rule of the project is checked.
   */
  receivedAt: z.iso.datetime().optional(),
  events: z.array(relayEventSchema).min(1).max(RELAY_MAX_EVENTS_PER_BATCH),
});
export type RelayMessage = z.infer<typeof relayMessageSchema>;
