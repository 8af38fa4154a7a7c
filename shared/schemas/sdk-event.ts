import { z } from "zod";
import { INGEST_LIMITS as L } from "../limits";
import { pageUrlForRelay } from "../pageUrl";
import { isPhoneCountry, PHONE_COUNTRY_RULE } from "../phone";
import { propertiesSchema } from "./properties";

// What an SDK sends to POST /l/events. Unknown fields are stripped (never stored), so older SDKs that
// send extra fields keep working and nothing unexpected reaches the queue.

const isoOrEpochMs = z.union([
  z.iso.datetime({ offset: true }),
  z.number().int().nonnegative().max(8.64e15).describe("milliseconds since the Unix epoch"),
]);

const boundedString = (max: number) => z.string().max(max);

/**
 * Where a phone written without its country code is placed: an ISO 3166-1 alpha-2 code, any case, of a
 * country with a phone numbering plan. The SDK event and the partner API's lookups and deletions share it.
 */
export const phoneCountrySchema = z
  .string()
  .regex(/^[A-Za-z]{2}$/, "must be a two-letter ISO 3166-1 alpha-2 country code")
  .refine(isPhoneCountry, PHONE_COUNTRY_RULE);
/** Validated per event, and already in the form that may be relayed (see pageUrlForRelay). */
const pageUrl = z
  .string()
  .max(L.maxPageUrlLength)
  .transform((raw, ctx) => {
    const url = pageUrlForRelay(raw);
    if (url !== null) return url;
    ctx.issues.push({
      code: "custom",
      input: raw,
      message: `an absolute http or https URL of at most ${L.maxPageUrlLength} characters`,
    });
    return z.NEVER;
  });

export const sdkEventSchema = z.object({
  eventId: z
    .string()
    .min(1)
    .max(L.maxEventIdLength)
    .regex(/^[\x21-\x7e]+$/, "printable ASCII without spaces")
    .optional(),
  name: z.string().trim().min(1).max(L.maxNameLength),
  userId: z.string().min(1).max(L.maxUserIdLength).nullish(),
  /**
   * The device's anonymous id (the SDK makes one on its first event; reset() makes a new one). Stored with
   * the event; an event carrying both ids links them, so requests by user id reach the anonymous events.
   */
  anonymousId: z.string().min(1).max(L.maxAnonymousIdLength).nullish(),
  timestamp: isoOrEpochMs.optional(),
  appId: boundedString(L.maxAppIdLength).nullish(),
  properties: propertiesSchema.optional(),
  email: boundedString(L.maxEmailLength).nullish(),
  phone: boundedString(L.maxPhoneLength).nullish(),
  /**
   * Where `phone` is placed when written without its country code (ISO 3166-1 alpha-2, any case): the
   * device's own country as the SDK knows it. Absent: the request's geo country. Steers phone parsing only.
   */
  phoneCountry: phoneCountrySchema.nullish(),
  device: z
    .object({
      os: boundedString(L.maxDeviceFieldLength).nullish(),
      osVersion: boundedString(L.maxDeviceFieldLength).nullish(),
      model: boundedString(L.maxDeviceFieldLength).nullish(),
      idfa: boundedString(L.maxDeviceFieldLength).nullish(),
      gaid: boundedString(L.maxDeviceFieldLength).nullish(),
    })
    .optional(),
  consent: z.object({ ads: z.boolean().optional() }).optional(),
  /** iOS: the AdServices attribution token, for the Apple Search Ads relay. Never stored. */
  adServicesToken: boundedString(L.maxAdServicesTokenLength).nullish(),
  /**
   * Web SDKs: the page the event happened on, for Meta's event_source_url (required for website events).
   * Relayed without its query string and fragment; never stored.
   */
  pageUrl: pageUrl.nullish(),
});
export type SdkEvent = z.infer<typeof sdkEventSchema>;

export const ingestEnvelopeSchema = z.object({
  sentAt: isoOrEpochMs.optional(),
  events: z.array(z.unknown()),
});

/** Returns a reason when properties break the nesting, key-count or size bounds, else null. */
export function checkPropertyBounds(properties: Record<string, unknown>): string | null {
  let keys = 0;
  const walk = (value: unknown, depth: number, path: string): string | null => {
    if (typeof value === "string") {
      return value.length > L.maxPropertyStringLength
        ? `properties${path}: string longer than ${L.maxPropertyStringLength} characters`
        : null;
    }
    if (value === null || typeof value !== "object") return null;
    if (depth > L.maxPropertyDepth)
      return `properties${path}: nested deeper than ${L.maxPropertyDepth} levels`;
    const entries = Array.isArray(value)
      ? value.map((v, i) => [String(i), v] as const)
      : Object.entries(value);
    for (const [key, child] of entries) {
      if (!Array.isArray(value)) {
        keys += 1;
        if (keys > L.maxPropertyKeys) return `properties: more than ${L.maxPropertyKeys} keys`;
        if (key.length > L.maxPropertyKeyLength) {
          return `properties${path}: key longer than ${L.maxPropertyKeyLength} characters`;
        }
      }
      const problem = walk(child, depth + 1, `${path}.${key}`);
      if (problem) return problem;
    }
    return null;
  };
  return walk(properties, 1, "");
}
