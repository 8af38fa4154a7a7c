import { createApiApp } from "./app";

// The partner API Worker (Hono). Routes live in routes/, one file per resource.
export default createApiApp();
