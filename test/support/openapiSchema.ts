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

/** The schema with `additionalProperties: false` on every object that lists its properties. */
function closed(schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(closed);
  if (schema === null || typeof schema !== "object") return schema;
  const out = Object.fromEntries(
    Object.entries(schema).map(([key, value]) => [key, closed(value)]),
  ) as JsonObject;
  if (out.type === "object" && out.properties && out.additionalProperties === undefined) {
    out.additionalProperties = false;
  }
  return out;
}

/**
 * A zod validator built from a schema of the document (refs resolved within it). `closed`: fields the
 * schema does not name are refused too, as a strict client would.
 */
export function documentedSchema(
  doc: unknown,
  schema: unknown,
  options: { closed?: boolean } = {},
): z.ZodType {
  const inlined = inlineRefs(doc, schema);
  return z.fromJSONSchema(
    (options.closed ? closed(inlined) : inlined) as Parameters<typeof z.fromJSONSchema>[0],
  );
}
