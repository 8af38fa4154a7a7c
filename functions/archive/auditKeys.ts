// Archive layout: audit/<yyyy>/<mm>/<dd>/<org_id>.ndjson.gz, one object per org and UTC day.
// Date first, because S3 lists keys in lexicographic order: every key before audit/<cutoff day>/ is
// expired, so the 2-year expiry is one listing from the start of the bucket, however many orgs there are.
// An org's archive is still one prefix per day (audit/*/*/*/<org_id>.ndjson.gz).

export const AUDIT_PREFIX = "audit/";

/** `day` is YYYY-MM-DD (UTC). */
export function auditObjectKey(orgId: string, day: string): string {
  return `${auditDayPrefix(day)}${encodeURIComponent(orgId)}.ndjson.gz`;
}

export function auditDayPrefix(day: string): string {
  const [yyyy, mm, dd] = day.split("-");
  return `${AUDIT_PREFIX}${yyyy}/${mm}/${dd}/`;
}
