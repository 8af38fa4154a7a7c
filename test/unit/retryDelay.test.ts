import { describe, expect, it } from "vitest";
import { retryDelaySeconds } from "../../functions/events/retryDelay";

describe("retryDelaySeconds", () => {
  it.each([
    // [attempts, base, max, expected]
    [1, 5, 600, 5],
    [2, 5, 600, 10],
    [3, 5, 600, 20],
    [4, 5, 600, 40],
    [5, 5, 600, 80],
    [6, 5, 600, 160],
    [7, 5, 600, 320],
    [8, 5, 600, 600], // 640 capped
    [9, 5, 600, 600],
    [1, 30, 3600, 30],
    [4, 30, 3600, 240],
    [8, 30, 3600, 3600], // 3840 capped
  ])("attempt %i, base %is, cap %is → %is", (attempts, base, max, expected) => {
    expect(retryDelaySeconds(attempts, base, max)).toBe(expected);
  });

  it("doubles from one attempt to the next until the cap", () => {
    const delays = Array.from({ length: 12 }, (_, i) => retryDelaySeconds(i + 1, 2, 1000));
    for (let i = 1; i < delays.length; i++) {
      const previous = delays[i - 1]!;
      expect(delays[i]).toBe(Math.min(1000, previous * 2));
    }
    expect(delays.at(-1)).toBe(1000);
  });

  it.each([
    ["zero attempts", 0],
    ["negative attempts", -3],
  ])("%s never goes below the base delay", (_label, attempts) => {
    expect(retryDelaySeconds(attempts, 5, 600)).toBe(5);
  });

  it("very many attempts stay at the cap: finite, never Infinity or NaN", () => {
    for (const attempts of [50, 1_000, 1_000_000]) {
      expect(retryDelaySeconds(attempts, 5, 43_200)).toBe(43_200);
    }
  });

  it("a base above the cap is capped from the first attempt", () => {
    expect(retryDelaySeconds(1, 900, 600)).toBe(600);
  });
});
