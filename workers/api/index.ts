import { createApiApp } from "./app";

export { ApiRateLimiter } from "./rateLimiter";

// The partner API Worker (Hono). Routes live in routes/, one file per resource.
export default createApiApp();
