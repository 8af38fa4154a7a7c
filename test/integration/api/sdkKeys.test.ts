import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { api } from "../../support/api";
import { createApiTenant } from "../../support/apiTenant";
import type { CreatedSdkKey, Project, SdkKey, SdkKeyList } from "../../support/apiTypes";
import { describeRouteSecurity } from "../../support/routeSecurity";
import { type Stack, startStack } from "../../support/stack";

let stack: Stack;
beforeAll(async () => {
  stack = await startStack({ consumer: "recorder" });
});
afterAll(() => stack?.dispose());

describe("SDK keys", () => {
  test("a key created through the API ingests; revoked, it is refused; secrets appear once", async () => {
    const owner = api(stack, (await createApiTenant(stack.db)).secret);
    const projectId = (await owner.post<unknown, Project>("/v1/projects", { name: "Web" })).body.id;
    const res = await owner.post<never, CreatedSdkKey>(`/v1/projects/${projectId}/sdk-keys`);
    expect(res.status).toBe(201);
    const key = res.body;
    expect(key.secret).toMatch(/^lp_pk_/);
    expect(key).toMatchObject({ object: "sdk_key", projectId, revokedAt: null });

    expect((await stack.ingest({ eventId: "k1", name: "open" }, { key: key.secret! })).status).toBe(202);

    const listed = await owner.get<SdkKeyList>(`/v1/projects/${projectId}/sdk-keys`);
    expect(listed.body.data.map((k) => k.id)).toEqual([key.id]);
    expect(listed.text).not.toContain(key.secret!);

    const revoked = await owner.post<never, SdkKey>(`/v1/projects/${projectId}/sdk-keys/${key.id}/revoke`);
    expect(revoked.status).toBe(200);
    expect(revoked.body.revokedAt).not.toBeNull();
    expect((await stack.ingest({ eventId: "k2", name: "open" }, { key: key.secret! })).status).toBe(401);

    const audit = await stack.db
      .selectFrom("audit_log")
      .select(["action", "changes"])
      .where("resource_id", "=", key.id)
      .orderBy("occurred_at")
      .execute();
    expect(audit.map((a) => a.action)).toEqual(["sdk_key.created", "sdk_key.revoked"]);
    expect(JSON.stringify(audit)).not.toContain(key.secret!);
  });
});

// 401, 403 for read_only on create and revoke, 404 for another org's or another project's keys, nothing
// changed (no SDK key created or revoked): the shared suite.
describeRouteSecurity(() => stack, "SDK keys");
