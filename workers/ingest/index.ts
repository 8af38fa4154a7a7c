import { createIngestApp } from "./app";

// The edge ingest Worker: POST /l/events and Segment's /v1/* routes. Everything it does is in app.ts and functions/ingest.
export default createIngestApp();
