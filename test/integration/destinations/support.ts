import { expect } from "vitest";
import type { Db } from "../../../shared/db";
import { bearer } from "../../support/apiTenant";
import type { Stack } from "../../support/stack";

// Helpers shared by the destination tests (this folder only).

export const META_TOKEN = "EAAGm0PX4ZCpsBAMetaProbeToken0123456789abcdefWXYZ";
export const TIKTOK_TOKEN = "ttProbeToken0123456789abcdef0123456789TTKK";

export type ErrorJson = { error: { code: string; message: string; details?: { field: string }[] } };

export interface DestinationJson {
  object: "destination";
  projectId: string;
  kind: string;
  enabled: boolean;
  status: string;
  failingSince: string | null;
  tokenLast4: string | null;
  datasetId?: string;
  pixelCode?: string;
  testEventCode?: string | null;
  sendDeviceIds?: boolean;
  createdAt: string;
  updatedAt: string;
}

/** Every answer a test got, so a test can assert that no token ever appeared in any of them. */
export class Calls {
  readonly bodies: string[] = [];
  constructor(private readonly stack: Stack) {}

  async send(
    secret: string,
    method: string,
    path: string,
    body?: unknown,
    headers: Record<string, string> = {},
  ) {
    const response = await this.stack.api(path, {
      method,
      headers: bearer(secret, headers),
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await response.text();
    this.bodies.push(`${method} ${path} ${response.status} ${JSON.stringify([...response.headers])} ${text}`);
    return { status: response.status, text, json: <T>() => JSON.parse(text) as T, headers: response.headers };
  }
}

export async function createProjectVia(calls: Calls, secret: string, name = "App"): Promise<string> {
  const created = await calls.send(secret, "POST", "/v1/projects", { name });
  expect(created.status).toBe(201);
  return created.json<{ id: string }>().id;
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
