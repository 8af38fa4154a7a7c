// The event shapes POST /l/events accepts (shared/schemas/sdk-event.ts on the server; a unit test checks that
// every event this SDK builds passes that schema). Written out here so the SDK has no runtime dependency.

export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };

/** Event properties: a JSON object (≤ 5 levels, ≤ 200 keys in all, keys ≤ 128, strings ≤ 8,192 chars). */
export type Properties = { [key: string]: JsonValue | undefined };

/** Device facts an app knows better than the User-Agent; each value ≤ 64 characters. */
export interface DeviceInfo {
  os?: string | null;
  osVersion?: string | null;
  model?: string | null;
  /** iOS advertising id (only with the user's ATT permission). Relayed to Meta when enabled, never stored. */
  idfa?: string | null;
  /** Android advertising id. Relayed to Meta when enabled, never stored. */
  gaid?: string | null;
}

export interface Consent {
  /** false: the edge removes ad ids, relay hashes, AdServices token, User-Agent and page URL; never relayed. */
  ads?: boolean;
}

/** Contact data for matching; hashed at the edge, never stored raw. */
export interface IdentifyTraits {
  email?: string | null;
  phone?: string | null;
  /** ISO 3166-1 alpha-2 country a phone written without "+" is read in (the device's own country). */
  phoneCountry?: string | null;
}

/** One event as sent to the ingest. `eventId` and `timestamp` are fixed when `track` is called. */
export interface LayersEvent {
  eventId: string;
  name: string;
  /** Epoch milliseconds on the device clock; the server corrects skew with the envelope's `sentAt`. */
  timestamp: number;
  userId?: string | null;
  appId?: string | null;
  properties?: Properties;
  email?: string | null;
  phone?: string | null;
  phoneCountry?: string | null;
  device?: DeviceInfo;
  consent?: Consent;
  adServicesToken?: string | null;
  /** Web: the page the event happened on (Meta's event_source_url); the edge drops query and fragment. */
  pageUrl?: string | null;
  /**
   * The device's anonymous id (set by the SDK unless `sendAnonymousId: false`; reset() makes a new one). An
   * event carrying it with a userId links the two on the server. See the README's SDK section.
   */
  anonymousId?: string;
}

/** Why an event was not (and will never be) stored. */
export interface Rejection {
  /**
   * Server codes: invalid_event, event_too_large, timestamp_too_old, or the request's own code when the
   * whole request was refused as malformed. Local codes: event_too_large, invalid_event (checked before
   * queueing), queue_full (dropped by the bounded queue, oldest first).
   */
  code: string;
  message: string;
}

/** A problem with delivery as a whole (not one event): the queue is kept. */
export interface DeliveryError {
  /** unauthorized, project_archived, not_found, method_not_allowed, rate_limited, network_error, http_<status>… */
  code: string;
  message: string;
  status?: number;
  /** true when sending stopped until `flush()` is called (or a new instance starts): 401, 403, 404, 405. */
  stopped: boolean;
}
