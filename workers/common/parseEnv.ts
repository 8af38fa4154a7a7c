import type { z } from "zod";

/** A Worker's vars or secrets do not pass its schema: a bad deploy, named by variable, never by value. */
export class EnvError extends Error {
  override readonly name = "EnvError";
}

// workerd hands every invocation of an isolate the same env object, so each schema validates it once per
// isolate; a new env (another deploy, a test's own) is validated afresh. Kept per schema, because one env may
// be read through several (the API's, and its destination routes').
const parsed = new WeakMap<z.ZodType, WeakMap<object, unknown>>();

/**
 * `env` validated by `schema` (zod: the single source of each variable's default and bounds), once per
 * isolate. Throws EnvError listing every bad variable with what is wrong with it; the message never
 * quotes a value, since the variables include secrets.
 */
export function parseEnv<Schema extends z.ZodType>(schema: Schema, env: object): z.output<Schema> {
  let bySchema = parsed.get(schema);
  if (!bySchema) {
    bySchema = new WeakMap();
    parsed.set(schema, bySchema);
  }
  if (bySchema.has(env)) return bySchema.get(env) as z.output<Schema>;
  const result = schema.safeParse(env);
  if (!result.success) {
    const problems = result.error.issues.map(
      (issue) => `${issue.path.join(".") || "(env)"}: ${issue.message}`,
    );
    throw new EnvError(`Invalid Worker configuration (vars and secrets): ${problems.join("; ")}`);
  }
  bySchema.set(env, result.data);
  return result.data;
}
