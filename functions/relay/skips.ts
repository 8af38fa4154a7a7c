/** Why an event of a batch was left out (recorded per batch in the delivery log, never a failure of it). */
export type SkipReason =
  | "too_old"
  | "event_name_invalid"
  | "no_customer_information"
  /** Meta website events need client_user_agent: the request had no User-Agent, or a dead letter was replayed. */
  | "no_client_user_agent"
  /** Meta website events: event_source_url is required (no `pageUrl`, no http(s) `url` property). */
  | "no_event_source_url"
  | "not_a_standard_event"
  | "no_attribution_token"
  | "no_user_id"
  | "attribution_token_invalid"
  | "attribution_not_found"
  /** Apple: the same user has a later token in the batch; one AdServices call per user. */
  | "attribution_token_superseded";

export interface Skipped {
  eventId: string;
  reason: SkipReason;
}

/** What a payload builder returns: the platform items to send, their event ids, and the rest with reasons. */
export interface Built<T> {
  items: T[];
  sentIds: string[];
  skipped: Skipped[];
}

/** Counts per reason, the form the delivery log keeps (event ids are not needed there). */
export function countSkips(skipped: Skipped[]): Record<string, number> {
  // A Map, not `out[reason]` on a plain object: a key named like an Object.prototype member would read
  // the inherited member instead of a count.
  const counts = new Map<string, number>();
  for (const s of skipped) counts.set(s.reason, (counts.get(s.reason) ?? 0) + 1);
  return Object.fromEntries(counts);
}
