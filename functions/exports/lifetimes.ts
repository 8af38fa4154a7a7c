// How long an export archive is kept, how long one download link works (README, Org export), and how long a
// run holds an export (the org-deletion cascade waits that long before it sweeps the org's exports). Apart
// from the exporter (functions/exports/runExport.ts, Node's crypto for streaming hashes) so the API, which
// has no Node built-ins, and the cascade read them without importing it.
export const EXPORT_OBJECT_DAYS = 7;
export const EXPORT_URL_SECONDS = 24 * 3600;
/** A running export whose heartbeat is older than this is taken over (its runner died). */
export const EXPORT_LEASE_SECONDS = 300;
