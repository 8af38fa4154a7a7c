import { expect } from "vitest";
import type { Db } from "../../../shared/db";
import { type Answer, answersGiven, api, type Method } from "../../support/api";
import type { Project } from "../../support/apiTypes";
import type { Stack } from "../../support/stack";

// Helpers shared by the destination tests (this folder only).

export const META_TOKEN = "EAAGm0PX4ZCpsBAMetaProbeToken0123456789abcdefWXYZ";
export const TIKTOK_TOKEN = "ttProbeToken0123456789abcdef0123456789TTKK";

/** Calls as one key or another, every answer kept (answersGiven) so a test can assert no token was in any. */
export class Calls {
  constructor(private readonly stack: Stack) {}

  get bodies(): readonly string[] {
    return answersGiven(this.stack);
  }

  send<Res = unknown>(
    secret: string,
    method: Method,
    path: string,
    body?: unknown,
    headers: Record<string, string> = {},
  ): Promise<Answer<Res>> {
    return api(this.stack, secret).send<Res>(method, path, body, { headers });
  }
}

export async function createProjectVia(calls: Calls, secret: string, name = "App"): Promise<string> {
  const created = await calls.send<Project>(secret, "POST", "/v1/projects", { name });
  expect(created.status).toBe(201);
  return created.body.id;
}

/** An org's destination rows and audit rows, straight from the database (owner connection). */
export async function snapshot(db: Db, orgId: string) {
  const destinations = await db
    .selectFrom("destinations")
    .selectAll()
    .where("org_id", "=", orgId)
    .orderBy("project_id")
    .orderBy("kind")
    .execute();
  const audit = await db
    .selectFrom("audit_log")
    .select(["id", "action", "resource_id"])
    .where("org_id", "=", orgId)
    .orderBy("id")
    .execute();
  return { destinations, audit };
}

export const metaBody = (overrides: Record<string, unknown> = {}) => ({
  datasetId: "123456789012345",
  accessToken: META_TOKEN,
  ...overrides,
});

export const tiktokBody = (overrides: Record<string, unknown> = {}) => ({
  pixelCode: "CBCHRKJC77U8JBE2K1EG",
  accessToken: TIKTOK_TOKEN,
  ...overrides,
});
