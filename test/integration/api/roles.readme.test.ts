import { readFile } from "node:fs/promises";
import path from "node:path";
import { afterAll, beforeAll, expect, test } from "vitest";
import { ROOT } from "../../../scripts/local/bundle";
import { ROLES, type Role } from "../../../shared/roles";
import { type Stack, startStack } from "../../support/stack";

// One source of truth for who may call what: each route declares its role (workers/api/access.ts), the
// OpenAPI document publishes it (x-required-role), and the README's "Roles per route" table must say the
// same — every route listed, nothing else. That the running API enforces it (every role below refused with
// 403, the role itself let through) is the shared route security suite's job (test/support/routeSecurity.ts).

let stack: Stack;
beforeAll(async () => {
  stack = await startStack({ consumer: "recorder" });
});
afterAll(() => stack?.dispose());

interface Documented {
  method: string;
  path: string;
  role: Role;
  orgWide: boolean;
}

async function readmeTable(): Promise<Documented[]> {
  const readme = await readFile(path.join(ROOT, "README.md"), "utf8");
  const section = readme.slice(readme.indexOf("### Roles per route"));
  const rows: Documented[] = [];
  for (const line of section.split("\n")) {
    const m = /^\| `(GET|POST|PATCH|PUT|DELETE) (\/v1\/[^`]+)` \| `(\w+)` \| (yes|) \|/.exec(line);
    if (m) rows.push({ method: m[1]!, path: m[2]!, role: m[3] as Role, orgWide: m[4] === "yes" });
    if (rows.length > 0 && line.trim() === "") break;
  }
  return rows.sort((a, b) => `${a.path} ${a.method}`.localeCompare(`${b.path} ${b.method}`));
}

async function openapiOperations(): Promise<Documented[]> {
  const doc = (await (await stack.api("/v1/openapi.json")).json()) as {
    paths: Record<string, Record<string, { "x-required-role"?: Role; "x-org-wide-key-only"?: boolean }>>;
  };
  const out: Documented[] = [];
  for (const [p, ops] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(ops)) {
      out.push({
        method: method.toUpperCase(),
        path: p,
        role: op["x-required-role"] as Role,
        orgWide: op["x-org-wide-key-only"] === true,
      });
    }
  }
  return out.sort((a, b) => `${a.path} ${a.method}`.localeCompare(`${b.path} ${b.method}`));
}

test("the README's table lists every route with the role and key scope the OpenAPI document declares", async () => {
  const documented = await readmeTable();
  const declared = await openapiOperations();
  expect(
    declared.every((d) => ROLES.includes(d.role)),
    "every route declares a role",
  ).toBe(true);
  const asTable = declared
    .map((d) => `| \`${d.method} ${d.path}\` | \`${d.role}\` | ${d.orgWide ? "yes" : ""} |`)
    .join("\n");
  expect(documented, `the README table should read:\n${asTable}`).toEqual(declared);
});
