// How long an export archive is kept, and how long one download link works (README, Org export). Apart
// from the exporter (functions/exports/runExport.ts, Node's crypto for streaming hashes) so the API, which
// has no Node built-ins, reads them without importing it.
export const EXPORT_OBJECT_DAYS = 7;
export const EXPORT_URL_SECONDS = 24 * 3600;
