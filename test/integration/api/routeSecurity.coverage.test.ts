import { readdir, readFile } from "node:fs/promises";
import path from "node:path";
import { expect, test } from "vitest";
import { ROOT } from "../../../scripts/local/bundle";
import { ROLES } from "../../../shared/roles";
import { documentedOperations, ROUTE_CASES } from "../../support/routeSecurity";

// The route security suite (test/support/routeSecurity.ts) must reach every operation of the OpenAPI
// document: each has a case, and each tag's suite is called by some test file. A new route without a case,
// or a new tag nobody runs, fails here before it ships unchecked.

async function testFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await testFiles(full)));
    else if (entry.name.endsWith(".test.ts")) out.push(full);
  }
  return out;
}

test("every documented operation has a security case, and every case is a documented operation", () => {
  const operations = documentedOperations().map((o) => `${o.method} ${o.path}`);
  expect(operations.length).toBeGreaterThan(30);
  expect(Object.keys(ROUTE_CASES).sort()).toEqual([...operations].sort());
});

test("every operation declares the role it needs", () => {
  for (const op of documentedOperations()) {
    expect(ROLES, `${op.method} ${op.path}`).toContain(op.requiredRole);
  }
});

test("every tag's security suite is run by a test file", async () => {
  const tags = new Set(documentedOperations().flatMap((o) => o.tags));
  const called = new Set<string>();
  for (const file of await testFiles(path.join(ROOT, "test"))) {
    const text = await readFile(file, "utf8");
    for (const m of text.matchAll(/describeRouteSecurity\(\s*\(\) => \w+,\s*"([^"]+)"\s*\)/g))
      called.add(m[1]!);
  }
  expect([...called].sort()).toEqual([...tags].sort());
});
