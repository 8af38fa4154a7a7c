/** Why an event of a batch was left out (recorded per batch in the delivery log, never a failure of it). */
export type SkipReason =
  | "too_old"
  | "event_name_invalid"
  | "no_customer_information"
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
  const out: Record<string, number> = {};
  for (const s of skipped) out[s.reason] = (out[s.reason] ?? 0) + 1;
  return out;
}
