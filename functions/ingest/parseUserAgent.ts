import { UAParser } from "ua-parser-js";
import { INGEST_LIMITS } from "../../shared/limits";

export interface ParsedUserAgent {
  os: string | null;
  osVersion: string | null;
  browser: string | null;
  deviceModel: string | null;
}

const EMPTY: ParsedUserAgent = { os: null, osVersion: null, browser: null, deviceModel: null };

/**
 * The User-Agent as far as we ever read it: parsing cost grows with length and real UAs are under 512
 * characters, so longer input is cut, not trusted whole. Null when the request had none.
 */
export function boundedUserAgent(userAgent: string | null | undefined): string | null {
  let bounded = userAgent?.trim().slice(0, INGEST_LIMITS.maxUserAgentLength);
  // A cut between the two halves of a surrogate pair (an emoji at character 512) would leave half a
  // character, which is no text at all: it goes with the half that was cut off.
  if (bounded && /[\uD800-\uDBFF]$/.test(bounded)) bounded = bounded.slice(0, -1);
  return bounded ? bounded : null;
}

/**
 * Reduces a User-Agent to the four coarse fields we keep. The raw string is not part of the result: the
 * only copy that goes further is boundedUserAgent's, which rides the queues to Meta (website events, ads
 * consent not refused) and is never stored or logged.
 */
export function parseUserAgent(userAgent: string | null | undefined): ParsedUserAgent {
  const bounded = boundedUserAgent(userAgent);
  if (!bounded) return EMPTY;
  const result = new UAParser(bounded).getResult();
  return {
    os: result.os.name ?? null,
    osVersion: result.os.version ?? null,
    browser: result.browser.name ?? null,
    deviceModel: result.device.model ?? null,
  };
}
