import { expect, test } from "vitest";
import { auditDayPrefix, auditObjectKey } from "../../functions/archive/auditKeys";
import { decodeNdjsonGz, encodeNdjsonGz } from "../../functions/archive/ndjson";
import { eventRetentionDays, yearsBefore } from "../../functions/retention/policy";

test("a project's event retention is clamped to 30..400 days, 400 when unset", () => {
  expect(eventRetentionDays(undefined)).toBe(400);
  expect(eventRetentionDays(null)).toBe(400);
  expect(eventRetentionDays(7)).toBe(30);
  expect(eventRetentionDays(90)).toBe(90);
  expect(eventRetentionDays(10_000)).toBe(400);
});

test("two years before a date is the same calendar instant; 29 February falls back to the 28th", () => {
  expect(yearsBefore(new Date("2031-06-15T12:00:00.000Z"), 2).toISOString()).toBe("2029-06-15T12:00:00.000Z");
  expect(yearsBefore(new Date("2032-02-29T08:00:00.000Z"), 2).toISOString()).toBe("2030-02-28T08:00:00.000Z");
});

test("archive keys are date first, so expired keys sort before the cutoff day's prefix", () => {
  expect(auditObjectKey("org_abc", "2029-03-16")).toBe("audit/2029/03/16/org_abc.ndjson.gz");
  expect(auditObjectKey("org_abc", "2029-03-16") < auditDayPrefix("2029-03-17")).toBe(true);
  expect(auditObjectKey("org_abc", "2029-03-17") < auditDayPrefix("2029-03-17")).toBe(false);
});

test("gzip NDJSON round-trips rows, including newlines and unicode inside values", async () => {
  const rows = [
    { id: "a", changes: { to: 'Näme "q"\nline' } },
    { id: "b", changes: {} },
  ];
  const bytes = await encodeNdjsonGz(rows);
  expect([bytes[0], bytes[1]]).toEqual([0x1f, 0x8b]); // the gzip magic number: `zcat` opens it
  expect(await decodeNdjsonGz(bytes)).toEqual(rows);
});
