import { z } from "zod";

// Validates real answers against the JSON Schemas an OpenAPI 3.1 document declares, so a test checks the
// document a client reads, not the zod schemas it was generated from.

type JsonObject = Record<string, unknown>;

/** The schema with every local `$ref` ("#/components/schemas/Error") replaced by what it points at. */
export function inlineRefs(doc: unknown, schema: unknown, seen: string[] = []): unknown {
  if (Array.isArray(schema)) return schema.map((item) => inlineRefs(doc, item, seen));
  if (schema === null || typeof schema !== "object") return schema;
  const { $ref, ...rest } = schema as JsonObject;
  if (typeof $ref === "string") {
    if (seen.includes($ref)) throw new Error(`recursive $ref ${$ref}`);
    const target = $ref
      .replace(/^#\//, "")
      .split("/")
      .reduce<unknown>((node, part) => (node as JsonObject | undefined)?.[part], doc);
    if (target === undefined) throw new Error(`unresolved $ref ${$ref}`);
    return inlineRefs(doc, { ...(target as JsonObject), ...rest }, [...seen, $ref]);
  }
  return Object.fromEntries(Object.entries(rest).map(([key, value]) => [key, inlineRefs(doc, value, seen)]));
}

/** A zod validator built from a schema of the document (refs resolved within it). */
export function documentedSchema(doc: unknown, schema: unknown): z.ZodType {
  return z.fromJSONSchema(inlineRefs(doc, schema) as Parameters<typeof z.fromJSONSchema>[0]);
}
