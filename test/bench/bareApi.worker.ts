// The baseline for (d): a bare Hono app answering the same two routes with fixed JSON shaped like the
// API's, no auth, no database. Bundled with esbuild like the API Worker (test/bench/api.ts).
import { Hono } from "hono";

const project = (n: number) => ({
  id: `proj_bench${String(n).padStart(11, "0")}`,
  object: "project",
  name: `Bench project ${n}`,
  eventRetentionDays: 400,
  archived: false,
  archivedAt: null,
  createdAt: "2026-04-20T00:00:00.000Z",
  updatedAt: "2026-04-20T00:00:00.000Z",
});

const app = new Hono();
app.get("/v1/projects", (c) =>
  c.json({ object: "list", data: [1, 2, 3].map(project), hasMore: false, nextCursor: null }),
);
app.post("/v1/projects", async (c) => {
  const { name } = await c.req.json<{ name: string }>();
  return c.json({ ...project(0), name }, 201);
});

export default app;
