import { describe, expect, it } from "vitest";
import { z } from "zod";
import { EnvError, parseEnv } from "../../workers/common/parseEnv";
import { deadLetterVarsSchema } from "../../workers/dead-letters/env";

/** A schema that counts how often it ran, so a test sees whether parseEnv validated again. */
function countingSchema() {
  const runs = { count: 0 };
  const schema = z.object({ LIMIT: z.coerce.number().int().min(1).default(600) }).superRefine(() => {
    runs.count += 1;
  });
  return { schema, runs };
}

describe("parseEnv", () => {
  it("validates an env object once per schema, and every new env object afresh", () => {
    const { schema, runs } = countingSchema();
    const env = { LIMIT: "5" };
    const first = parseEnv(schema, env);
    expect(first).toEqual({ LIMIT: 5 });
    expect(parseEnv(schema, env)).toBe(first);
    expect(runs.count).toBe(1);

    // Another deploy, or a test's own env: its values, not the first env's.
    expect(parseEnv(schema, { LIMIT: "7" })).toEqual({ LIMIT: 7 });
    expect(runs.count).toBe(2);
  });

  it("keeps one result per schema for the same env (the API reads its env through two)", () => {
    const env = { LIMIT: "3", NAME: "x" };
    const limit = z.object({ LIMIT: z.coerce.number() });
    const name = z.object({ NAME: z.string() });
    expect(parseEnv(limit, env)).toEqual({ LIMIT: 3 });
    expect(parseEnv(name, env)).toEqual({ NAME: "x" });
    expect(parseEnv(limit, env)).toEqual({ LIMIT: 3 });
  });

  it("the schema's defaults apply to what the config leaves out", () => {
    const { schema } = countingSchema();
    expect(parseEnv(schema, {})).toEqual({ LIMIT: 600 });
  });

  it("names every bad variable and what is wrong, never a value (secrets are among them)", () => {
    const env = {
      DATABASE_URL: "",
      S3_ENDPOINT: "not-a-url-sk_live_SECRETVALUE",
      S3_SECRET_ACCESS_KEY: "SECRETVALUE",
      RELAY_RECORD_ATTEMPTS: "1000",
    };
    let error: unknown;
    try {
      parseEnv(deadLetterVarsSchema, env);
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(EnvError);
    const message = (error as EnvError).message;
    expect(message).toContain("DATABASE_URL: Too small");
    expect(message).toContain("S3_ENDPOINT: Invalid URL");
    expect(message).toContain("RELAY_RECORD_ATTEMPTS: Too big");
    expect(message).not.toContain("SECRETVALUE");
    expect(message).not.toContain("1000");
  });

  it("a bad env is never cached: every invocation fails until the config is fixed", () => {
    const { schema, runs } = countingSchema();
    const env = { LIMIT: "0" };
    expect(() => parseEnv(schema, env)).toThrow("LIMIT: Too small");
    expect(() => parseEnv(schema, env)).toThrow(EnvError);
    expect(runs.count).toBe(2);
  });
});
