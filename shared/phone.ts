import {
  type CountryCode,
  isSupportedCountry,
  type PhoneNumber,
  parsePhoneNumberFromString,
} from "libphonenumber-js/max";

// Reading a phone number the way the ad platforms and partners do: with libphonenumber's numbering plans,
// not hand-written digit rules. The full ("max") metadata is used because only it checks a number's digits
// against each country's assigned ranges; the smaller builds check the length alone and would call
// unassigned numbers (US area code 555, Brazil's "11 0…") valid and relay hashes no platform can match.

/** The region code libphonenumber has a numbering plan for (any case in, upper case out), else undefined. */
export function phoneRegion(code: string | null | undefined): CountryCode | undefined {
  if (code == null) return undefined;
  const upper = code.trim().toUpperCase();
  return /^[A-Z]{2}$/.test(upper) && isSupportedCountry(upper) ? upper : undefined;
}

/** For request schemas: an ISO 3166-1 alpha-2 code (any case) of a country with a phone numbering plan. */
export function isPhoneCountry(code: string): boolean {
  return /^[A-Za-z]{2}$/.test(code) && phoneRegion(code) !== undefined;
}

export const PHONE_COUNTRY_RULE =
  "must be an ISO 3166-1 alpha-2 country code (e.g. US, de) of a country with a phone numbering plan";

/** One phone as the hashing rule sees it. */
export interface PhoneReading {
  /** E.164 digits without the "+" (country code first); digits as sent when the number could not be placed. */
  digits: string;
  /** libphonenumber considers the number valid: only then is it relayed to the ad platforms. */
  valid: boolean;
}

function parse(text: string, region: CountryCode | undefined): PhoneNumber | undefined {
  return parsePhoneNumberFromString(text, region ? { defaultCountry: region } : {});
}

// "x123", "ext. 123", "extension 123", "#123", ";ext=123" at the end. Only needed for a number that could
// not be parsed (libphonenumber splits extensions off every number it reads).
const TRAILING_EXTENSION = /(?:;\s*ext=|\s*(?:ext(?:ension|n)?\.?|x|#))\s*\d{1,10}\s*$/i;

/**
 * The number in international form. Written with "+" it is read as such. Otherwise it is read in the
 * default region (national format, the region's international prefix, or its own country code without
 * "+"); when that gives no valid number, it is read once more as international: after "00" (the
 * international prefix of most of the world, e.g. "0049 170 …" from a US device) or as digits that start
 * with the country code (the form this API documented before). A valid reading wins; else the default
 * region's reading of an invalid number; else, when nothing can be parsed (a national number with no
 * known region, too few digits), the digits as sent. Null when there is no digit at all.
 */
export function readPhone(raw: string, defaultRegion?: string | null): PhoneReading | null {
  const text = raw.trim();
  const region = phoneRegion(defaultRegion);
  const first = parse(text, region);
  if (first?.isValid()) return { digits: digitsOf(first), valid: true };
  const second = text.startsWith("+") ? undefined : parse(text.replace(/^[^\d+]*(?:00)?/, "+"), undefined);
  if (second?.isValid()) return { digits: digitsOf(second), valid: true };
  const invalid = first ?? second;
  if (invalid) return { digits: digitsOf(invalid), valid: false };
  const digits = text.replace(TRAILING_EXTENSION, "").replace(/\D/g, "");
  return digits === "" ? null : { digits, valid: false };
}

function digitsOf(phone: PhoneNumber): string {
  return phone.number.slice(1); // E.164 ("+" then digits) without the "+"; the extension is never part of it
}
