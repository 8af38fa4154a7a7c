import { z } from "zod";
import { INGEST_LIMITS } from "../limits";
import { propertiesSchema } from "./properties";

// The contract between the edge and the consumer: what rides in one message on the "events" queue.
// Everything personal is already hashed, and there is no IP. The few raw values the relays need (device ad
// ids, the User-Agent, the AdServices token) ride here only, and only when ads consent was not refused;
// the consumer never writes them to a table.

const sha256 = z.string().regex(/^[0-9a-f]{64}$/);
const text = z.string().max(8192);

export const queuedEventSchema = z.object({
  eventId: z.string().min(1).max(128),
  name: z.string().min(1).max(128),
  userId: z.string().min(1).max(256).nullable(),
  /** Optional so messages queued by the previous release (which had none) stay valid. */
  anonymousId: z.string().min(1).max(INGEST_LIMITS.maxAnonymousIdLength).nullable().optional(),
  timestamp: z.iso.datetime(),
  appId: text.nullable(),
  os: text.nullable(),
  osVersion: text.nullable(),
  deviceModel: text.nullable(),
  browser: text.nullable(),
  country: z.string().max(8).nullable(),
  region: text.nullable(),
  emailSha256: sha256.nullable(),
  phoneSha256: sha256.nullable(),
  properties: propertiesSchema,
  /** null when the SDK said nothing about consent. */
  consentAds: z.boolean().nullable(),
  /**
   * Device advertising ids, present only when ads consent was not refused. They exist for the relays
   * (forwarded when a destination is enabled) and are never written to any table.
   */
  adIds: z.object({ idfa: z.string().optional(), gaid: z.string().optional() }).optional(),
  /**
   * The phone hashed by each platform's own rule (shared/pii.ts phoneHashes), for the relays only:
   * never written to any table. Absent when there is no phone or it is not a valid number.
   */
  relayPhone: z.object({ metaSha256: sha256, tiktokSha256: sha256 }).optional(),
  /** Apple's AdServices attribution token, for the Apple Search Ads relay only: never written to any table. */
  adServicesToken: z.string().min(1).max(4096).optional(),
  /**
   * The request's User-Agent (its first 512 characters), for Meta's client_user_agent on website events
   * only: never written to any table or log.
   */
  userAgent: z.string().min(1).max(INGEST_LIMITS.maxUserAgentLength).optional(),
  /** The page URL without query or fragment (shared/pageUrl.ts), for the relays only: never stored. */
  pageUrl: z.string().min(1).max(INGEST_LIMITS.maxPageUrlLength).optional(),
});
export type QueuedEvent = z.infer<typeof queuedEventSchema>;

export const eventsMessageSchema = z.object({
  v: z.literal(1),
  orgId: z.string().min(1),
  projectId: z.string().min(1),
  receivedAt: z.iso.datetime(),
  events: z.array(queuedEventSchema).min(1),
  /** Set when a dead letter is sent back (functions/deadLetters/tend.ts): how many times it was. */
  redrives: z.number().int().min(1).optional(),
});
export type EventsMessage = z.infer<typeof eventsMessageSchema>;
