import { UAParser } from "ua-parser-js";

export interface ParsedUserAgent {
  os: string | null;
  osVersion: string | null;
  browser: string | null;
  deviceModel: string | null;
}

const EMPTY: ParsedUserAgent = { os: null, osVersion: null, browser: null, deviceModel: null };

/**
 * Reduces a User-Agent to the four coarse fields we keep. The raw string goes no further than this
 * function: it is not returned, enqueued, stored or logged.
 */
export function parseUserAgent(userAgent: string | null | undefined): ParsedUserAgent {
  if (!userAgent) return EMPTY;
  // Parsing cost grows with length; real UAs are < 512 chars, so longer input is cut, not trusted.
  const result = new UAParser(userAgent.slice(0, 512)).getResult();
  return {
    os: result.os.name ?? null,
    osVersion: result.os.version ?? null,
    browser: result.browser.name ?? null,
    deviceModel: result.device.model ?? null,
  };
}
