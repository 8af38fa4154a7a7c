// How long an export archive is kept, how long one download link works (README, Org export), and how long a
// run holds an export (functions/exports/lease.ts: what the org-deletion cascade waits for). Apart
// from the exporter (functions/exports/runExport.ts, Node's crypto for streaming hashes) so the API, which
// has no Node built-ins, reads them without importing it.
export const EXPORT_OBJECT_DAYS = 7;
export const EXPORT_URL_SECONDS = 24 * 3600;
/** A running export whose heartbeat is older than this is taken over (its runner died). */
export const EXPORT_LEASE_SECONDS = 300;
