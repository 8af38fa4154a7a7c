import { describe, expect, it } from "vitest";
import { type ParsedUserAgent, parseUserAgent } from "../../functions/ingest/parseUserAgent";

const IPHONE_SAFARI =
  "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1";
const ANDROID_CHROME =
  "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.6367.82 Mobile Safari/537.36";
const SAMSUNG_CHROME =
  "Mozilla/5.0 (Linux; Android 13; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Mobile Safari/537.36";
const WINDOWS_CHROME =
  "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36";
const MAC_CHROME =
  "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36";

const NONE: ParsedUserAgent = { os: null, osVersion: null, browser: null, deviceModel: null };

describe("parseUserAgent", () => {
  it.each<[string, string, ParsedUserAgent]>([
    [
      "iPhone Safari",
      IPHONE_SAFARI,
      { os: "iOS", osVersion: "17.4.1", browser: "Mobile Safari", deviceModel: "iPhone" },
    ],
    [
      "Android Chrome on a Pixel",
      ANDROID_CHROME,
      { os: "Android", osVersion: "14", browser: "Chrome", deviceModel: "Pixel 8" },
    ],
    [
      "Android Chrome on a Samsung",
      SAMSUNG_CHROME,
      { os: "Android", osVersion: "13", browser: "Chrome", deviceModel: "SM-S918B" },
    ],
    [
      "desktop Chrome on Windows",
      WINDOWS_CHROME,
      { os: "Windows", osVersion: "10", browser: "Chrome", deviceModel: null },
    ],
    [
      "desktop Chrome on macOS",
      MAC_CHROME,
      { os: "Mac OS", osVersion: "10.15.7", browser: "Chrome", deviceModel: "Macintosh" },
    ],
  ])("%s", (_label, ua, expected) => {
    expect(parseUserAgent(ua)).toEqual(expected);
  });

  it.each<[string, string | null | undefined]>([
    ["empty string", ""],
    ["undefined", undefined],
    ["null", null],
  ])("%s → all null", (_label, ua) => {
    expect(parseUserAgent(ua)).toEqual(NONE);
  });

  it("an unrecognisable string yields nulls, not guesses", () => {
    expect(parseUserAgent("curl-like-thing")).toEqual(NONE);
  });

  it("keeps only the four coarse fields: the raw string is not returned", () => {
    const result = parseUserAgent(IPHONE_SAFARI);
    expect(Object.keys(result).sort()).toEqual(["browser", "deviceModel", "os", "osVersion"]);
    const json = JSON.stringify(result);
    expect(json).not.toContain("Mozilla");
    expect(json).not.toContain("AppleWebKit");
  });

  it("a huge User-Agent is cut before parsing and still parses its leading part", () => {
    const result = parseUserAgent(`${ANDROID_CHROME} ${"x".repeat(100_000)}`);
    expect(result.os).toBe("Android");
    expect(result.deviceModel).toBe("Pixel 8");
  });
});
